"""When each (target, provider) job runs next: interval bounds, jitter and backoff, on a steady clock."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from syncd.report import Status, TargetReport

if TYPE_CHECKING:
    from syncd.sync.targets import JobSpec

JobKey = tuple[Path, str]  # (target as configured, provider id)

JITTER = 0.10  # ±10 % of the interval, so many daemons (or providers) do not poll in step
BACKOFF_START = 30.0
# A Retry-After is honoured, but a server cannot park a provider for a day by saying so.
RETRY_AFTER_CAP = 6 * 3600.0


def jittered(interval: float, u: float) -> float:
    """`interval` moved by up to ±JITTER of itself; `u` is a uniform draw in [0, 1)."""
    return interval * (1.0 + JITTER * (2.0 * u - 1.0))


def backoff(failures: int, interval: float, retry_after: float | None = None) -> float:
    """Delay before retrying after `failures` consecutive failures (1 = the first).

    30 s, 60 s, 120 s, ... doubling up to the interval, and never sooner than a Retry-After.
    """
    if failures <= 0:
        return interval
    exponent = min(failures - 1, 32)  # 2**32 * 30 s is past any interval: no overflow
    delay = min(BACKOFF_START * 2.0**exponent, interval)
    if retry_after is not None and math.isfinite(retry_after) and retry_after > 0:
        delay = max(delay, min(retry_after, RETRY_AFTER_CAP))
    return delay


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one job's last run went, as far as scheduling cares."""

    ok: bool
    retry_after: float | None = None
    label: str | None = None  # FetchError label ("auth", "timeout", ...) or "target"


def outcome_of(report: TargetReport, provider_id: str) -> Outcome:
    """The outcome of one provider in a target's report; a target-level error fails them all."""
    if report.error is not None:
        return Outcome(ok=False, label="target")
    for p in report.providers:
        if p.id == provider_id:
            if p.status is Status.ERROR:
                return Outcome(ok=False, retry_after=p.retry_after, label=p.error_label)
            return Outcome(ok=True)
    return Outcome(ok=True)  # not in the report: nothing was asked of it, nothing failed


def next_delay(outcome: Outcome, failures: int, interval: float, u: float) -> float:
    """Seconds to the next run after a run with `outcome` (`failures` counts this one)."""
    if outcome.ok:
        return jittered(interval, u)
    return backoff(failures, interval, outcome.retry_after)


@dataclass(frozen=True, slots=True)
class JobChanges:
    """What to do to the running jobs so they match the targets as they are now."""

    added: tuple[JobSpec, ...] = ()  # new (target, provider): add and sync now
    removed: tuple[JobKey, ...] = ()  # provider or target gone: drop the job
    retimed: tuple[JobSpec, ...] = ()  # only the interval changed: reschedule
    refetch: tuple[JobSpec, ...] = ()  # baseURL/apiKey/headers/npm changed: sync now

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.retimed or self.refetch)


def diff_jobs(
    current: Mapping[JobKey, JobSpec],
    wanted: Iterable[JobSpec],
    keep_targets: Collection[Path] = (),
) -> JobChanges:
    """Compare running jobs with `wanted`; jobs of `keep_targets` (unparseable now) stay."""
    want = {(s.target, s.provider_id): s for s in wanted if s.target not in keep_targets}
    added, retimed, refetch = [], [], []
    for key, spec in want.items():
        old = current.get(key)
        if old is None:
            added.append(spec)
        elif old.fingerprint != spec.fingerprint:
            refetch.append(spec)
        elif old.interval != spec.interval:
            retimed.append(spec)
    removed = [k for k in current if k not in want and k[0] not in keep_targets]
    return JobChanges(tuple(added), tuple(removed), tuple(retimed), tuple(refetch))


def job_id(key: JobKey) -> str:
    return f"{key[1]} @ {key[0]}"


def steady_clock() -> float:
    """Seconds on a clock that never steps with the wall clock and goes on counting through a
    suspend: CLOCK_BOOTTIME on Linux, CLOCK_MONOTONIC elsewhere (macOS counts sleep in it)."""
    return time.clock_gettime(_STEADY)


_STEADY = getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)
# The event loop sleeps on CLOCK_MONOTONIC, which stands still while the machine is suspended;
# waking at least this often lets a run that fell due during a suspend happen soon after it.
MAX_SLEEP = 30.0


class JobScheduler:
    """One timer per job key on the steady clock; each due run calls `fire(key)` on the event loop.

    Why not APScheduler (3.x, which this replaced): it keeps next-run times as wall-clock
    datetimes, so an NTP step or a VM resume an hour back stopped every job for that hour, and a
    step forward paused them; and the daemon sets every job's next run itself after each run
    (Jobs.ran), so all it used was a timer. This is that timer, on a clock that does not step.

    A job fires at most once per due time (runs missed in a suspend coalesce into one, on wake)
    and is then due again `interval` later, unless the daemon defers it first. The `now` callers
    pass is their wall-clock time, used only to show when a job runs next.
    """

    def __init__(self, fire: Callable[[JobKey], Awaitable[None]],
                 clock: Callable[[], float] = steady_clock) -> None:
        self._fire = fire
        self._clock = clock
        self._due: dict[JobKey, float] = {}  # key -> steady time of its next run
        self._shown: dict[JobKey, datetime] = {}  # key -> that time on the wall clock, for status
        self._interval: dict[JobKey, float] = {}
        self._fired: dict[JobKey, float] = {}  # key -> steady time the timer last fired it
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._firing: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._arm()

    def shutdown(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._loop = None

    def wakeup(self) -> None:
        """Run what is due now, and sleep again until the next due time (after a suspend)."""
        self._run_due()

    def put(self, key: JobKey, interval: float, first_delay: float, now: datetime) -> None:
        """Add the job, or replace its interval; its next run is `first_delay` after `now`."""
        self._interval[key] = interval
        self._set(key, first_delay, now)

    def remove(self, key: JobKey) -> None:
        for table in (self._due, self._shown, self._interval, self._fired):
            table.pop(key, None)
        self._arm()

    def defer(self, key: JobKey, delay: float, now: datetime) -> None:
        """Set the job's next run `delay` seconds after its run began when the timer fired it, so
        a job keeps its rate however long each run takes (never sooner than now), else after
        `now` (a run asked for by a change or a signal); a no-op for a dropped job."""
        if key not in self._interval:
            return
        fired = self._fired.pop(key, None)
        if fired is not None:
            delay -= self._clock() - fired
        self._set(key, delay, now)

    def next_run(self) -> datetime | None:
        return min(self._shown.values(), default=None)

    def next_run_of(self, key: JobKey) -> datetime | None:
        return self._shown.get(key)

    def ids(self) -> list[str]:
        return sorted(job_id(k) for k in self._interval)

    def _set(self, key: JobKey, delay: float, now: datetime) -> None:
        delay = max(0.0, delay)
        self._due[key] = self._clock() + delay
        self._shown[key] = now + timedelta(seconds=delay)
        self._arm()

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._loop is None or not self._due:
            return
        wait = min(self._due.values()) - self._clock()
        self._timer = self._loop.call_later(min(max(wait, 0.0), MAX_SLEEP), self._run_due)

    def _run_due(self) -> None:
        if self._loop is None:
            return
        now = self._clock()
        for key, when in sorted(self._due.items(), key=lambda kv: kv[1]):
            if when <= now:
                self._fired[key] = now
                self._due[key] = now + self._interval[key]  # until the daemon defers it
                self._shown[key] = datetime.now(UTC) + timedelta(seconds=self._interval[key])
                task = asyncio.ensure_future(self._fire(key), loop=self._loop)
                self._firing.add(task)
                task.add_done_callback(self._firing.discard)
        self._arm()
