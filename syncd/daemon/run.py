"""`syncd run`: drive an Engine from a schedule, file changes and signals, and report to systemd."""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol

import structlog

from syncd import paths
from syncd.daemon import schedule_file, sdnotify
from syncd.daemon.heap import give_back_big_blocks
from syncd.daemon.jobs import Jobs, status_line
from syncd.daemon.runner import TargetRunner
from syncd.daemon.schedule import JobKey
from syncd.daemon.stores import StoreSource, StoreWatch
from syncd.daemon.unserved import Unserved
from syncd.daemon.watching import Watcher
from syncd.errors import SettingsError
from syncd.report import TargetReport
from syncd.sync.rounds import Round
from syncd.sync.targets import JobSpec

log = structlog.get_logger("syncd.daemon")

STOP_GRACE = 1.5  # a write in flight gets this long on SIGTERM (fetches are cancelled at once)
HEARTBEAT_MAX = 30.0  # also re-reads the wall clock, so runs missed in a suspend happen on wake
PUBLISH_EVERY = 1.0  # seconds between writes of the schedule `syncd status` reads
ACTIVITY_PERIOD = 600.0  # a quiet daemon's log: one line of counts this often


class Engine(StoreSource, Protocol):
    """What the daemon needs from the engine; `syncd once` runs the same cycles."""

    def watched_files(self) -> list[Path]: ...
    def jobs(self) -> list[JobSpec]: ...
    def own_writes(self, target: Path) -> frozenset[str]: ...
    async def fetch(self, target: Path, provider_ids: Sequence[str] | None = None) -> Round: ...
    def unchanged(self, target: Path, rnd: Round) -> TargetReport | None: ...
    async def apply(self, target: Path, rounds: Sequence[Round]) -> TargetReport: ...
    async def revalidate(
        self, target: Path, known: Mapping[str, frozenset[str]] | None = None
    ) -> TargetReport: ...
    def reload(self) -> None: ...
    def stop(self) -> None: ...
    def auth_failed_providers(self) -> list[tuple[Path, str]]: ...
    async def aclose(self) -> None: ...


__all__ = ["Daemon", "Engine", "run_daemon", "serve", "status_line"]


class Daemon:
    """The long-running side of syncd; one instance per `serve()`."""

    def __init__(
        self,
        engine: Engine,
        *,
        force_polling: bool = False,
        notify: Callable[[str], bool] = sdnotify.notify,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.engine = engine
        self._notify = notify
        self._jobs = Jobs(self._fire, rng)
        self._runners: dict[Path, TargetRunner[Round]] = {}
        self._broken: dict[Path, str] = {}  # target -> its error; its jobs stay until it parses
        self._unserved = Unserved()  # user-owned IDs not served, said when that changes
        self._watcher = Watcher(engine, self._on_file_change, force_polling=force_polling)
        self._stores = StoreWatch(engine, self._on_store_change, force_polling=force_polling)
        self._stop = asyncio.Event()
        self._ready = False
        self._publishing: asyncio.TimerHandle | None = None
        self._published_at = -PUBLISH_EVERY

    # -- public -----------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()
        self._watcher.stop()
        self._stores.stop()
        self.engine.stop()

    def sync_all(self) -> list[asyncio.Task[None]]:
        """Queue a run of every job now (SIGUSR1); jobs already running get one follow-up run.

        Returns a task per target that ends once its runs are written."""
        tasks = []
        for target, ids in self._jobs.by_target().items():
            runner = self._runner(target)
            runner.request(ids)
            tasks.append(asyncio.ensure_future(runner.drained()))
        return tasks

    def reload(self) -> None:
        """Re-read settings, then bring the watches and jobs in line (SIGHUP, settings edited)."""
        try:
            self.engine.reload()
        except SettingsError as e:
            log.error("settings not reloaded; keeping the previous ones", error=str(e))
            return
        log.info("settings reloaded")
        if [*self.engine.watched_files()] != self._watcher.watched:
            self._watcher.restart()
        self._reconcile()

    def next_run(self, target: Path, provider_id: str) -> datetime | None:
        """When the job runs next (for `status` and tests)."""
        return self._jobs.next_run((target, provider_id))

    def job_keys(self) -> list[JobKey]:
        return self._jobs.keys()

    async def serve(self, stop_event: asyncio.Event | None = None) -> int:
        loop = asyncio.get_running_loop()
        installed = self._install_signals(loop)
        self._jobs.sched.start()
        waiters = [asyncio.create_task(self._stop.wait())]
        if stop_event is not None:
            waiters.append(asyncio.create_task(stop_event.wait()))
        watcher = asyncio.create_task(self._watcher.run(), name="syncd watcher")
        stores = asyncio.create_task(self._stores.run(), name="syncd model stores")
        heartbeat: asyncio.Task[None] | None = None
        try:
            self._reconcile(sync_new=False)
            first = [*self.sync_all(), asyncio.create_task(self._watcher.ready.wait())]
            # the first cycle and the watcher, unless a stop comes first
            done: set[asyncio.Task[object]] = set()
            while not (done & set(waiters)) and not all(t.done() for t in first):
                done, _ = await asyncio.wait([*first, *waiters], return_when="FIRST_COMPLETED")
            if not self._stop.is_set() and not any(w.done() for w in waiters):
                self._ready = True
                self._notify(f"READY=1\nSTATUS={self._jobs.status()}")
                log.info("daemon ready", jobs=len(self._jobs), watched=len(self._watcher.watched))
                heartbeat = asyncio.create_task(self._heartbeat(), name="syncd heartbeat")
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._notify("STOPPING=1")
            log.info("daemon stopping")
            self.stop()
            for t in (*waiters, *([heartbeat] if heartbeat else [])):
                t.cancel()
            if self._publishing is not None:
                self._publishing.cancel()
            self._jobs.sched.shutdown()
            await self._finish_in_flight()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(watcher, timeout=1.0)
            stores.cancel()  # a list check in flight is not worth waiting for
            with contextlib.suppress(asyncio.CancelledError):
                await stores
            for sig in installed:
                loop.remove_signal_handler(sig)
            await self.engine.aclose()
        return 0

    # -- signals and files ------------------------------------------------------------------

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> list[int]:
        handlers: dict[int, Callable[[], object]] = {
            signal.SIGTERM: self.stop,
            signal.SIGINT: self.stop,
            signal.SIGHUP: self._on_sighup,
            signal.SIGUSR1: self._on_sigusr1,
        }
        installed = []
        for sig, handler in handlers.items():
            try:
                loop.add_signal_handler(sig, handler)
            except (NotImplementedError, RuntimeError, ValueError):
                continue  # not the main thread (embedded, tests): stop_event still works
            installed.append(sig)
        return installed

    def _on_sighup(self) -> None:
        self._notify(sdnotify.reloading_message())
        self.reload()
        self._notify(f"READY=1\nSTATUS={self._jobs.status()}")

    def _on_sigusr1(self) -> None:
        log.info("sync of everything requested")
        self.sync_all()

    def _on_store_change(self, key: JobKey) -> None:
        if key in self._jobs and not self._stop.is_set():
            self._runner(key[0]).request([key[1]])

    def _on_file_change(self, path: Path) -> None:
        if path == paths.settings_file():
            self.reload()
        elif path == paths.opencode_auth_file():
            for target, pid in self.engine.auth_failed_providers():
                self._runner(target).request([pid])
        else:
            self._runner(path).request(revalidate=True)

    # -- runs -------------------------------------------------------------------------------

    def _runner(self, target: Path) -> TargetRunner[Round]:
        runner = self._runners.get(target)
        if runner is None:
            runner = self._runners[target] = TargetRunner(target, self._fetch, self._apply,
                                                          self._revalidate)
        return runner

    async def _fire(self, key: JobKey) -> None:
        if key in self._jobs and not self._stop.is_set():
            self._runner(key[0]).request([key[1]])

    def _reconcile(self, *, sync_new: bool = True, settings_read: bool = True) -> None:
        """Jobs in line with the files; the model stores looked for again when a job changed or
        the settings were read (it walks /proc: not after every hand edit that leaves them)."""
        generation = self._jobs.generation
        to_sync = self._jobs.reconcile(self.engine.jobs(), self._broken.keys())
        if settings_read or self._jobs.generation != generation:
            self._stores.refresh(self._jobs.keys())
        if sync_new:
            for target, ids in to_sync.items():
                self._runner(target).request(ids)

    async def _fetch(self, target: Path, provider_ids: list[str]) -> Round | None:
        """Fetch; an answer that would change nothing is finished here (None), not written."""
        try:
            rnd = await self.engine.fetch(target, provider_ids)
            report = self.engine.unchanged(target, rnd)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the engine reports failures; anything else is a bug, not a crash
            log.exception("fetch failed", target=str(target))
            error = f"internal error: {type(e).__name__}"
            return Round(target, report=TargetReport(str(target), error=error))
        if report is None:
            return rnd
        self._ran(target, provider_ids, report)
        return None

    async def _apply(self, target: Path, answers: list[tuple[list[str], Round]]) -> bool:
        """Plan and write the answers as one; whether the file changed."""
        provider_ids = list(dict.fromkeys(pid for ids, _ in answers for pid in ids))
        try:
            report = await self.engine.apply(target, [rnd for _, rnd in answers])
        except Exception as e:  # as in _fetch
            log.exception("cycle failed", target=str(target))
            report = TargetReport(path=str(target), error=f"internal error: {type(e).__name__}")
        self._ran(target, provider_ids, report)
        return report.changed

    def _ran(self, target: Path, provider_ids: list[str], report: TargetReport) -> None:
        self._note_target_error(target, report)
        for note in report.notes:  # e.g. a read-only target now written through its overlay
            log.warning(note, target=str(target))
        self._jobs.ran(target, provider_ids, report)
        self._stores.after_sync(target, provider_ids, report)
        if self._ready and not self._stop.is_set():
            self._notify(f"STATUS={self._jobs.status()}")
        self._publish_soon()
        # for leak hunting (tests, -v): this count must stay flat over hours of cycles
        log.debug("cycle done", target=str(target), tasks=len(asyncio.all_tasks()))

    def _publish_soon(self) -> None:
        """Publish the schedule for `syncd status` at most once a PUBLISH_EVERY (it is a write)."""
        if self._publishing is not None:
            return
        wait = max(0.0, self._published_at + PUBLISH_EVERY - time.monotonic())
        self._publishing = asyncio.get_running_loop().call_later(wait, self._publish)

    def _publish(self) -> None:
        self._publishing = None
        self._published_at = time.monotonic()
        if not self._stop.is_set():
            self._jobs.publish(paths.state_dir())

    async def _revalidate(self, target: Path) -> None:
        try:
            report = await self.engine.revalidate(target, self._unserved.known(target))
        except Exception:
            log.exception("revalidation failed", target=str(target))
            return
        log.info("target revalidated", target=str(target), valid=report.error is None)
        self._note_target_error(target, report)
        for p in report.providers:
            if p.tombstoned:
                log.info("managed models deleted by hand", target=str(target), provider=p.id,
                         tombstoned=list(p.tombstoned))
        if report.error is None:
            self._unserved.said(target, report)
            self._reconcile(settings_read=False)
            # a stale buffer's save dropped what syncd had just added: add it back now
            restored = [p.id for p in report.providers if p.restored]
            if restored and not self._stop.is_set():
                self._runner(target).request(restored)

    def _note_target_error(self, target: Path, report: TargetReport) -> None:
        if report.error is None:
            if self._broken.pop(target, None) is not None:
                log.info("target valid again", target=str(target))
            return
        if self._broken.get(target) != report.error:  # once per distinct error, not every run
            log.error("target invalid; left alone until fixed", target=str(target),
                      error=report.error)
        self._broken[target] = report.error

    # -- liveness and stopping --------------------------------------------------------------

    async def _heartbeat(self) -> None:
        watchdog = sdnotify.watchdog_period()
        period = min(watchdog, HEARTBEAT_MAX) if watchdog else HEARTBEAT_MAX
        said_at = time.monotonic()
        while not self._stop.is_set():
            if time.monotonic() - said_at >= ACTIVITY_PERIOD:
                said_at = time.monotonic()
                log.info("activity", minutes=round(ACTIVITY_PERIOD / 60), **self._jobs.activity.take())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=period)
                return
            self._jobs.sched.wakeup()
            if watchdog:  # this task running at all is the health systemd asks about
                self._notify("WATCHDOG=1")

    async def _finish_in_flight(self) -> None:
        """Cancel the fetches in flight; a write in flight gets STOP_GRACE to land."""
        writers = [t for runner in self._runners.values() for t in runner.close()]
        if not writers:
            return
        log.info("waiting for writes in flight", count=len(writers))
        _, late = await asyncio.wait(writers, timeout=STOP_GRACE)
        for t in late:
            t.cancel()  # writes are atomic (a swap of whole files): cancelling leaves old or new
        if late:
            await asyncio.wait(late, timeout=0.2)


async def serve(
    engine: Engine, *, force_polling: bool = False, stop_event: asyncio.Event | None = None
) -> int:
    """Run the daemon until SIGTERM/SIGINT or `stop_event`; takes no lock (run_daemon does)."""
    return await Daemon(engine, force_polling=force_polling).serve(stop_event)


def run_daemon(
    engine: Engine,
    *,
    state_dir: Path,
    force_polling: bool = False,
    stop_event: asyncio.Event | None = None,
) -> int:
    """`syncd run`: take the single-daemon lock of `state_dir`, then serve; 1 if one runs."""
    from syncd.sync.locks import acquire_daemon_lock

    lock = acquire_daemon_lock(state_dir)
    if lock is None:
        log.error("another syncd daemon is already running for this state dir",
                  state_dir=str(state_dir))
        return 1
    log.debug("heap", big_blocks_given_back=give_back_big_blocks())  # flat memory over days
    with lock:
        try:
            return asyncio.run(serve(engine, force_polling=force_polling, stop_event=stop_event))
        finally:
            schedule_file.withdraw(state_dir)
