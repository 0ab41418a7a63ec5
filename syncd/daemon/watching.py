"""The daemon's file watch: follows the engine's file list and routes each real change to a handler."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import structlog

from syncd.daemon.watch import ChangeGate, watch_changes

log = structlog.get_logger("syncd.daemon")


class Files(Protocol):
    """What the watch needs from the engine."""

    def watched_files(self) -> list[Path]: ...
    def own_writes(self, target: Path) -> frozenset[str]: ...


class Watcher:
    """Watches `files.watched_files()`, skipping syncd's own writes; `restart()` re-reads the list."""

    def __init__(self, files: Files, on_change: Callable[[Path], None], *, force_polling: bool) -> None:
        self._files = files
        self._on_change = on_change
        self._force_polling = force_polling
        self._gate = ChangeGate()
        self._stopped = False
        self._restart = asyncio.Event()
        self.ready = asyncio.Event()
        self.watched: list[Path] = []

    def restart(self) -> None:
        self._restart.set()

    def stop(self) -> None:
        self._stopped = True
        self._restart.set()

    async def run(self) -> None:
        while not self._stopped:
            self._restart.clear()
            self.watched = [*self._files.watched_files()]
            for f in self.watched:
                self._gate.prime(f)
            try:
                async for changed in watch_changes(
                    self.watched, stop_event=self._restart,
                    force_polling=self._force_polling, on_ready=self.ready.set,
                ):
                    for path in sorted(changed):
                        if self._gate.check(path, self._files.own_writes(path)):
                            log.info("file changed", path=str(path))
                            self._on_change(path)
            except Exception:
                log.exception("file watcher failed; starting it again")
                self.ready.set()  # do not hold READY=1 back forever on a broken watch
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._restart.wait(), timeout=1.0)
