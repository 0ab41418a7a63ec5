"""When each (target, provider) job runs next: interval, jitter and backoff, on APScheduler."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

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


class JobScheduler:
    """APScheduler jobs, one per key; each due run calls `fire(key)` on the event loop.

    Runs are coalesced and never missed for good (`misfire_grace_time=None`: a run missed during
    sleep happens once on wake). The daemon sets each job's next run after every run it makes.
    """

    def __init__(self, fire: Callable[[JobKey], Awaitable[None]]) -> None:
        self._fire = fire
        self._sched = AsyncIOScheduler(timezone=UTC)

    def start(self) -> None:
        self._sched.start()  # binds to the running event loop

    def shutdown(self) -> None:
        if self._sched.running:
            self._sched.shutdown(wait=False)

    def wakeup(self) -> None:
        """Look at the wall clock again now (after a suspend the loop's timer is late)."""
        if self._sched.running:
            self._sched.wakeup()

    def put(self, key: JobKey, interval: float, first_delay: float, now: datetime) -> None:
        """Add the job, or replace its interval; its next run is `first_delay` after `now`."""
        self._sched.add_job(
            self._fire,
            trigger=IntervalTrigger(seconds=interval, jitter=interval * JITTER, timezone=UTC),
            args=[key],
            id=job_id(key),
            name=job_id(key),
            next_run_time=now + timedelta(seconds=first_delay),
            misfire_grace_time=None,
            coalesce=True,
            max_instances=1,
            replace_existing=True,
        )

    def remove(self, key: JobKey) -> None:
        with contextlib.suppress(JobLookupError):
            self._sched.remove_job(job_id(key))

    def defer(self, key: JobKey, delay: float, now: datetime) -> None:
        """Set the job's next run to `delay` seconds after `now` (no-op for a dropped job)."""
        with contextlib.suppress(JobLookupError):
            self._sched.modify_job(job_id(key), next_run_time=now + timedelta(seconds=delay))

    def next_run(self) -> datetime | None:
        times = [j.next_run_time for j in self._sched.get_jobs() if j.next_run_time is not None]
        return min(times) if times else None

    def next_run_of(self, key: JobKey) -> datetime | None:
        job = self._sched.get_job(job_id(key))
        return None if job is None else job.next_run_time

    def ids(self) -> list[str]:
        return sorted(j.id for j in self._sched.get_jobs())
