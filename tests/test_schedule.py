"""Schedule maths (jitter, backoff, Retry-After), job diffing, and the steady-clock job timer."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from syncd.daemon.schedule import (
    BACKOFF_START,
    JITTER,
    RETRY_AFTER_CAP,
    JobScheduler,
    Outcome,
    backoff,
    diff_jobs,
    jittered,
    next_delay,
    outcome_of,
)
from syncd.report import ProviderReport, Status, TargetReport
from syncd.sync.targets import JobSpec

T = Path("/cfg/opencode.jsonc")


@pytest.mark.parametrize("interval", [60.0, 900.0])
@pytest.mark.parametrize("u", [0.0, 0.25, 0.5, 0.999999])
def test_jitter_stays_within_ten_percent(interval: float, u: float) -> None:
    d = jittered(interval, u)
    assert interval * (1 - JITTER) <= d <= interval * (1 + JITTER)


def test_jitter_spans_both_sides_of_the_interval() -> None:
    assert jittered(100.0, 0.0) == pytest.approx(100.0 * (1 - JITTER))
    assert jittered(100.0, 0.5) == pytest.approx(100.0)
    assert jittered(100.0, 1.0) == pytest.approx(100.0 * (1 + JITTER))


@pytest.mark.parametrize("interval", [60.0, 900.0, 3600.0])
def test_backoff_doubles_from_thirty_seconds_up_to_the_interval(interval: float) -> None:
    delays = [backoff(n, interval) for n in range(1, 12)]
    assert delays[0] == min(BACKOFF_START, interval)
    for prev, cur in zip(delays, delays[1:], strict=False):
        assert cur == min(prev * 2, interval)
    assert delays[-1] == interval


def test_backoff_survives_absurd_failure_counts() -> None:
    assert backoff(10_000, 900.0) == 900.0


def test_retry_after_longer_than_backoff_is_honoured() -> None:
    assert backoff(1, 900.0, retry_after=120.0) == 120.0


def test_retry_after_shorter_than_backoff_does_not_shorten_it() -> None:
    assert backoff(4, 900.0, retry_after=5.0) == BACKOFF_START * 8


def test_retry_after_beyond_interval_is_honoured_but_capped() -> None:
    assert backoff(1, 60.0, retry_after=600.0) == 600.0
    assert backoff(1, 60.0, retry_after=10 * RETRY_AFTER_CAP) == RETRY_AFTER_CAP
    assert backoff(1, 60.0, retry_after=float("inf")) == BACKOFF_START


def test_next_delay_is_jittered_interval_after_success_and_backoff_after_failure() -> None:
    assert next_delay(Outcome(ok=True), 0, 60.0, 0.5) == pytest.approx(60.0)
    failed = Outcome(ok=False, retry_after=None)
    assert next_delay(failed, 2, 900.0, 0.5) == backoff(2, 900.0)


def test_outcome_reads_provider_status_and_retry_after() -> None:
    report = TargetReport(path=str(T), providers=(
        ProviderReport(id="ok", status=Status.OK),
        ProviderReport(
            id="limited", status=Status.ERROR, error_label="rate-limited", retry_after=42.0
        ),
        ProviderReport(id="off", status=Status.SKIPPED),
    ))
    assert outcome_of(report, "ok").ok
    assert outcome_of(report, "off").ok
    limited = outcome_of(report, "limited")
    assert not limited.ok and limited.retry_after == 42.0 and limited.label == "rate-limited"


def test_target_error_fails_every_provider_of_it() -> None:
    report = TargetReport(path=str(T), error=f"{T}:3:5: expected ','")
    assert not outcome_of(report, "anything").ok


def _spec(pid: str, interval: float = 60.0, fp: str = "a", target: Path = T) -> JobSpec:
    return JobSpec(target=target, provider_id=pid, interval=interval, fingerprint=fp)


def test_diff_jobs_finds_added_removed_retimed_and_refetch() -> None:
    current = {(T, p): _spec(p) for p in ("keep", "gone", "slow", "moved")}
    wanted = [_spec("keep"), _spec("slow", interval=900.0), _spec("moved", fp="b"), _spec("new")]
    changes = diff_jobs(current, wanted)
    assert [s.provider_id for s in changes.added] == ["new"]
    assert changes.removed == ((T, "gone"),)
    assert [s.provider_id for s in changes.retimed] == ["slow"]
    assert [s.provider_id for s in changes.refetch] == ["moved"]


def test_diff_jobs_keeps_jobs_of_a_target_that_does_not_parse() -> None:
    broken = Path("/cfg/broken.json")
    current = {(broken, "ollama"): _spec("ollama", target=broken), (T, "lm"): _spec("lm")}
    changes = diff_jobs(current, [_spec("lm")], keep_targets=[broken])
    assert not changes


async def test_scheduler_runs_a_due_job_and_defers_it() -> None:
    fired: asyncio.Queue[tuple[Path, str]] = asyncio.Queue()

    async def fire(key: tuple[Path, str]) -> None:
        await fired.put(key)

    sched = JobScheduler(fire)
    sched.start()
    try:
        now = datetime.now(UTC)
        sched.put((T, "a"), 3600.0, 0.0, now)
        sched.put((T, "b"), 3600.0, 1800.0, now)
        assert await asyncio.wait_for(fired.get(), timeout=5) == (T, "a")
        later = datetime.now(UTC)
        sched.defer((T, "a"), 120.0, later)  # 120 s after the timer fired it, a moment ago
        nxt = sched.next_run_of((T, "a"))
        assert nxt is not None and later + timedelta(seconds=115) < nxt <= later + timedelta(seconds=120)
        assert sched.next_run() == nxt
        sched.remove((T, "a"))
        sched.remove((T, "a"))  # removing twice is harmless
        sched.defer((T, "a"), 5.0, later)  # so is deferring a dropped job
        assert sched.next_run_of((T, "a")) is None
        assert sched.ids() == ["b @ /cfg/opencode.jsonc"]
    finally:
        sched.shutdown()


async def test_a_job_keeps_its_rate_however_long_its_runs_take() -> None:
    clock = [1000.0]
    fired: list[tuple[Path, str]] = []

    async def fire(key: tuple[Path, str]) -> None:
        fired.append(key)

    key = (T, "a")
    sched = JobScheduler(fire, clock=lambda: clock[0])
    sched.start()
    try:
        now = datetime.now(UTC)
        sched.put(key, 10.0, 0.0, now)
        sched.wakeup()
        await asyncio.sleep(0)
        assert fired == [key]
        clock[0] += 3.0  # the run took 3 s: the next one is 10 s after it began
        sched.defer(key, 10.0, now)
        assert sched.next_run_of(key) == now + timedelta(seconds=7)

        clock[0] += 7.0
        sched.wakeup()
        await asyncio.sleep(0)
        assert fired == [key, key]
        clock[0] += 12.0  # longer than its interval: next at once, never in the past
        sched.defer(key, 10.0, now)
        assert sched.next_run_of(key) == now

        sched.defer(key, 10.0, now)  # a run a change asked for counts from its end
        assert sched.next_run_of(key) == now + timedelta(seconds=10)
    finally:
        sched.shutdown()
