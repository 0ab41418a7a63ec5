"""Follow local runtimes' model stores, so a pull or a removal runs the provider's job at once.

Where a runtime's store can be read, its folders are watched (recursively) and a change runs the
job of every provider it serves once the store has been quiet for a moment: Ollama writes a pull's
manifest last, in one write, so a short quiet is enough; an LM Studio download or a GGUF being
copied writes for minutes, and only the quiet after the last write means it is complete.
Where no store is readable, the provider's list is polled every FAST_POLL seconds (one request,
a hash of the IDs) and the job runs only when the hash changes.

Removal still needs `grace` successful answers. The run a store change starts is one; while a
removal it found is pending, the job asks again every CONFIRM seconds instead of at its interval,
so with grace 2 a model goes about CONFIRM seconds after `ollama rm`, on two answers that agree.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Collection, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import structlog

from syncd.daemon.schedule import JobKey
from syncd.report import Status, TargetReport

log = structlog.get_logger("syncd.daemon")

QUIET = {"ollama": 0.1, "llamacpp": 1.0, "lmstudio": 2.0}  # seconds without events before a run
DEFAULT_QUIET = 1.0
# Runtimes whose list changes at the user's hand (pull, rm, a file dropped in); a gateway or vLLM
# on this machine changes with its own configuration and keeps its interval.
RUNTIMES = frozenset(QUIET)
FAST_POLL = 5.0  # seconds between list checks where no store is readable
CONFIRM = 2.0  # seconds between the answers that confirm a removal the store announced
MAX_CONFIRMS = 10  # a bound, not a policy: grace decides when the removal happens
STEP_MS = 50  # watchfiles' check for quiet; small because an Ollama pull is one write


class StoreInfo(Protocol):
    """One local provider and its runtime's store (see syncd.sync.local.LocalStore)."""

    @property
    def target(self) -> Path: ...
    @property
    def provider_id(self) -> str: ...
    @property
    def runtime(self) -> str: ...
    @property
    def folders(self) -> tuple[Path, ...]: ...
    @property
    def rescan(self) -> bool: ...


class StoreSource(Protocol):
    """What the store watch needs from the engine."""

    def local_stores(self, kinds: Mapping[JobKey, str] | None = None) -> Sequence[StoreInfo]: ...
    async def list_fingerprint(
        self, target: Path, provider_id: str, *, rescan: bool = False
    ) -> str | None: ...


def _key(s: StoreInfo) -> JobKey:
    return (s.target, s.provider_id)


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


class StoreWatch:
    """Turns store changes and list changes into job requests; `refresh` follows the jobs."""

    def __init__(
        self,
        source: StoreSource,
        request: Callable[[JobKey], None],
        *,
        force_polling: bool = False,
        poll_every: float = FAST_POLL,
        confirm_after: float = CONFIRM,
    ) -> None:
        self._source = source
        self._request = request
        self._force_polling = force_polling
        self._poll_every = poll_every
        self._confirm_after = confirm_after
        self._jobs: frozenset[JobKey] = frozenset()
        self._by_folder: dict[Path, list[StoreInfo]] = {}
        self._polled: dict[JobKey, StoreInfo] = {}
        self._runtime: dict[JobKey, str] = {}
        self._kinds: dict[JobKey, str] = {}  # what each job's fetches found
        self._prints: dict[JobKey, str] = {}
        self._due: dict[Path, asyncio.TimerHandle] = {}
        self._confirming: dict[JobKey, int] = {}
        # store-started, no removal seen yet: a run that answers from before the change (one in
        # flight when the store changed) does not use up the confirmations of the run after it
        self._unseen: set[JobKey] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._restart = asyncio.Event()
        self._stopped = asyncio.Event()
        self._poll_now = asyncio.Event()
        self.folders: tuple[Path, ...] = ()
        self.watching = asyncio.Event()  # set once the current folders are watched
        self._seen: set[Path] = set()  # folders watched at some point (their providers ran since)
        self._logged_polled: list[JobKey] = []

    @property
    def polled(self) -> list[JobKey]:
        return sorted(self._polled)

    # -- the plan ----------------------------------------------------------------------------

    def refresh(self, jobs: Collection[JobKey]) -> None:
        """Find the stores of the local providers among `jobs` again (jobs or kinds changed)."""
        self._jobs = frozenset(jobs)
        try:
            stores = [s for s in self._source.local_stores(self._kinds) if _key(s) in self._jobs]
        except Exception:  # a store is an accelerator: the schedule still runs every job
            log.exception("model stores not looked for")
            return
        by_folder: dict[Path, list[StoreInfo]] = {}
        polled: dict[JobKey, StoreInfo] = {}
        for s in stores:
            self._runtime[_key(s)] = s.runtime
            for folder in s.folders:
                by_folder.setdefault(folder, []).append(s)
            if not s.folders and s.runtime in RUNTIMES:
                polled[_key(s)] = s
        if set(polled) - set(self._polled):
            self._poll_now.set()  # a new one's baseline is taken at once, not a period later
        self._by_folder, self._polled = by_folder, polled
        self._prints = {k: v for k, v in self._prints.items() if k in polled}
        folders = tuple(sorted(by_folder))
        if folders != self.folders:
            self.folders = folders
            self._restart.set()
        elif polled and set(polled) != set(self._logged_polled):
            self._announce()

    # -- running -----------------------------------------------------------------------------

    async def run(self) -> None:
        await asyncio.gather(self._watch(), self._poll())

    def stop(self) -> None:
        self._stopped.set()
        self._restart.set()
        self._poll_now.set()
        for handle in self._due.values():
            handle.cancel()
        self._due.clear()
        self._confirming.clear()
        self._unseen.clear()
        for task in self._tasks:
            task.cancel()

    async def _watch(self) -> None:
        from watchfiles import awatch  # loaded by the daemon only, and only once a store is found

        while not self._stopped.is_set():
            self._restart.clear()
            self.watching.clear()
            folders = self.folders
            if not folders:
                self.watching.set()
                await self._restart.wait()
                continue
            # waiters resume after awatch's first step has set the watches up (same task step)
            self.watching.set()
            asyncio.get_running_loop().call_soon(self._watched, folders)
            try:
                async for changes in awatch(
                    *folders, stop_event=self._restart, recursive=True, step=STEP_MS,
                    force_polling=self._force_polling, ignore_permission_denied=True,
                ):
                    self._changed({Path(p) for _, p in changes})
            except Exception:
                log.exception("model store watch failed; starting it again")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._restart.wait(), timeout=1.0)

    def _watched(self, folders: tuple[Path, ...]) -> None:
        """The watches are live: say so, and run the providers of folders new to the watch once,
        for what changed there between their last run and now (a pull during start-up)."""
        self._announce()
        for folder in folders:
            if folder not in self._seen:
                self._seen.add(folder)
                for s in self._by_folder.get(folder, ()):
                    if _key(s) in self._jobs and not self._stopped.is_set():
                        self._request(_key(s))

    def _announce(self) -> None:
        self._logged_polled = sorted(self._polled)
        log.info("model stores watched", folders=[str(f) for f in self.folders],
                 polled=[k[1] for k in self._logged_polled])

    def _changed(self, paths: set[Path]) -> None:
        loop = asyncio.get_running_loop()
        for folder, stores in self._by_folder.items():
            if not any(_inside(p, folder) for p in paths):
                continue
            quiet = max(QUIET.get(s.runtime, DEFAULT_QUIET) for s in stores)
            old = self._due.pop(folder, None)
            if old is not None:
                old.cancel()  # still writing: wait for the quiet after the last write
            self._due[folder] = loop.call_later(quiet, self._fire, folder)

    def _fire(self, folder: Path) -> None:
        self._due.pop(folder, None)
        stores = list(self._by_folder.get(folder, ()))
        if not stores or self._stopped.is_set():
            return
        log.info("model store changed", folder=str(folder), providers=[s.provider_id for s in stores])
        for s in stores:
            if s.rescan:  # the runtime lists a changed folder only once asked to read it again
                self._spawn(self._rescan_then_run(s))
            else:
                self._start(_key(s))

    async def _rescan_then_run(self, s: StoreInfo) -> None:
        await self._source.list_fingerprint(s.target, s.provider_id, rescan=True)
        self._start(_key(s))

    def _start(self, key: JobKey) -> None:
        if key in self._jobs and not self._stopped.is_set():
            self._confirming[key] = MAX_CONFIRMS
            self._unseen.add(key)
            self._request(key)

    async def _poll(self) -> None:
        while not self._stopped.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poll_now.wait(), timeout=self._poll_every)
            self._poll_now.clear()
            if self._stopped.is_set():
                return
            keys = list(self._polled)
            if not keys:
                continue
            prints = await asyncio.gather(
                *(self._source.list_fingerprint(*k) for k in keys), return_exceptions=True)
            for key, fp in zip(keys, prints, strict=True):
                if not isinstance(fp, str) or key not in self._polled:
                    continue  # cannot be asked now: the job's own runs report why
                old, self._prints[key] = self._prints.get(key), fp
                if old is not None and old != fp:
                    log.info("model list changed", target=str(key[0]), provider=key[1])
                    self._start(key)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- after each run ----------------------------------------------------------------------

    def after_sync(self, target: Path, provider_ids: Sequence[str], report: TargetReport) -> None:
        """Ask again soon while a removal the store announced is pending; learn new kinds."""
        by_id = {p.id: p for p in report.providers}
        learnt = False
        for pid in provider_ids:
            key = (target, pid)
            p = by_id.get(pid)
            if p is not None and p.kind and self._kinds.get(key) != p.kind:
                self._kinds[key] = p.kind
                # its first fetch told what runs there: its store may be findable now
                learnt |= key in self._runtime and self._runtime[key] != p.kind
            left = self._confirming.pop(key, None)
            if left is None or p is None or p.status is not Status.OK or left <= 0:
                continue
            if not p.pending:
                if key in self._unseen:  # an answer from before the change: the next one counts
                    self._unseen.discard(key)
                    self._confirming[key] = left
                continue
            self._unseen.discard(key)
            self._confirming[key] = left - 1
            asyncio.get_running_loop().call_later(self._confirm_after, self._confirm, key)
        if learnt:
            self.refresh(self._jobs)

    def _confirm(self, key: JobKey) -> None:
        if key in self._confirming and key in self._jobs and not self._stopped.is_set():
            self._request(key)
