"""Runs one target's syncs and revalidations as tasks: never two runs of one provider at once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path


class TargetRunner:
    """Runs one target's syncs and revalidations; never two runs of one provider at once.

    Providers run together when asked together (one fetch round, one write), and a provider
    asked for while its own run is in flight gets one follow-up run, however often it is asked.
    Other providers of the target start at once: a hung server delays only its own job.
    Revalidations are serialised among themselves and coalesced the same way.
    """

    def __init__(
        self,
        target: Path,
        sync: Callable[[Path, list[str]], Awaitable[None]],
        revalidate: Callable[[Path], Awaitable[None]],
    ) -> None:
        self.target = target
        self._sync = sync
        self._revalidate = revalidate
        self.running: set[str] = set()
        self.pending: set[str] = set()  # asked for again while running: one follow-up run
        self.revalidate_again = False
        self._revalidating: asyncio.Task[None] | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    def request(
        self, provider_ids: Iterable[str] = (), *, revalidate: bool = False
    ) -> asyncio.Task[None] | None:
        """Start what can start now; return the task that runs the (first) new work, if any."""
        started: asyncio.Task[None] | None = None
        if revalidate:
            if self._revalidating is None or self._revalidating.done():
                started = self._revalidating = self._spawn(self._revalidate_loop(), "revalidate")
            else:
                self.revalidate_again = True
        ids = set(provider_ids)
        self.pending |= ids & self.running
        now = sorted(ids - self.running)
        if now:
            self.running.update(now)
            task = self._spawn(self._sync_loop(now), ",".join(now))
            started = started or task
        return started

    def cancel_follow_ups(self) -> None:
        self.pending.clear()
        self.revalidate_again = False

    def busy(self) -> list[asyncio.Task[None]]:
        return [t for t in self.tasks if not t.done()]

    def _spawn(self, coro: Awaitable[None], what: str) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        task.set_name(f"syncd {what} @ {self.target}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def _revalidate_loop(self) -> None:
        while True:
            self.revalidate_again = False
            await self._revalidate(self.target)
            if not self.revalidate_again:
                return

    async def _sync_loop(self, batch: list[str]) -> None:
        try:
            while batch:
                await self._sync(self.target, batch)
                again = sorted(self.pending.intersection(batch))
                self.pending.difference_update(again)
                self.running.difference_update(set(batch) - set(again))
                batch = again
        finally:
            self.running.difference_update(batch)
