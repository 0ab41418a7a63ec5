"""A hostile clock and hostile intervals: wall-clock steps neither stop nor burst the schedule, and
an interval outside 1 s .. 7 days is a settings error for `once` and `run` alike."""

from __future__ import annotations

import asyncio
import importlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from syncd.daemon.schedule import JobScheduler
from syncd.errors import SettingsError
from syncd.settings import parse_settings

KEY = (Path("/cfg/opencode.jsonc"), "ollama")
INTERVAL = 0.2


class WallClock:
    """The wall clock as this process sees it, moved by `offset` seconds (an NTP step, a VM
    resume): time.time() and datetime.now() in every module that schedules, APScheduler's too
    when it is installed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.offset = 0.0
        real_time, clock = time.time, self

        class Shifted(datetime):
            @classmethod
            def now(cls, tz: Any = None) -> Any:
                return datetime.fromtimestamp(real_time() + clock.offset, tz)

        monkeypatch.setattr(time, "time", lambda: real_time() + clock.offset)
        for name in ("syncd.daemon.schedule", "syncd.daemon.jobs", "apscheduler.schedulers.base",
                     "apscheduler.triggers.interval"):
            try:
                module = importlib.import_module(name)
            except ImportError:
                continue
            if hasattr(module, "datetime"):
                monkeypatch.setattr(module, "datetime", Shifted)


@pytest.fixture
def wall(monkeypatch: pytest.MonkeyPatch) -> WallClock:
    return WallClock(monkeypatch)


async def until(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def scheduler(fired: list[float]) -> JobScheduler:
    async def fire(_key: tuple[Path, str]) -> None:
        fired.append(time.monotonic())

    return JobScheduler(fire)


@pytest.mark.parametrize("step", [-3600.0, 3600.0])
async def test_a_wall_clock_step_neither_stops_nor_bursts_the_schedule(
    wall: WallClock, step: float
) -> None:
    fired: list[float] = []
    sched = scheduler(fired)
    sched.start()
    try:
        sched.put(KEY, INTERVAL, INTERVAL, datetime.now(UTC))
        assert await until(lambda: len(fired) >= 2)
        wall.offset = step
        stepped = len(fired)
        came = await until(lambda: len(fired) >= stepped + 4)
        assert came, f"{len(fired) - stepped} runs after a {step:+.0f}s step"
        gaps = [b - a for a, b in zip(fired[stepped - 1:], fired[stepped:], strict=False)]
        assert min(gaps) >= INTERVAL / 4, gaps  # no burst of make-up runs (those come ~0 s apart)
    finally:
        sched.shutdown()


async def test_a_run_missed_in_a_suspend_happens_once_on_wake() -> None:
    steady = [1000.0]  # the suspend: the steady clock (boot time) moved, the loop's clock did not
    fired: list[float] = []

    async def fire(_key: tuple[Path, str]) -> None:
        fired.append(steady[0])

    sched = JobScheduler(fire, clock=lambda: steady[0])
    sched.start()
    try:
        sched.put(KEY, 60.0, 60.0, datetime.now(UTC))
        steady[0] += 8 * 3600  # eight hours asleep: 480 runs missed
        sched.wakeup()
        await asyncio.sleep(0.05)
        assert fired == [steady[0]]  # one run, not 480
        sched.wakeup()
        await asyncio.sleep(0.05)
        assert len(fired) == 1  # and the next one is an interval away
        assert sched.next_run_of(KEY) is not None
        assert sched.next_run_of(KEY) > datetime.now(UTC) + timedelta(seconds=30)  # type: ignore[operator]
    finally:
        sched.shutdown()


@pytest.mark.parametrize(("text", "key"), [
    ("{interval: 1e12}", "interval"),
    ('{interval: "30d"}', "interval"),
    ('{local_interval: "1ms"}', "local_interval"),
    ("{local_interval: 0.5}", "local_interval"),
    ('{providers: {ollama: {interval: "500ms"}}}', "providers.ollama.interval"),
    ("{timeouts: {total: 1e12}}", "timeouts.total"),
])
def test_an_interval_outside_a_second_to_a_week_is_a_settings_error(text: str, key: str) -> None:
    with pytest.raises(SettingsError, match=key.replace(".", r"\.")):
        parse_settings(text)


def test_the_bounds_themselves_are_fine() -> None:
    settings = parse_settings('{interval: "7d", local_interval: "1s", '
                              'providers: {a: {interval: 604800}}, timeouts: {total: "1h"}}')
    assert (settings.interval, settings.local_interval) == (604800.0, 1.0)


@pytest.mark.parametrize("command", ["once", "run"])
def test_once_and_run_refuse_an_absurd_interval_alike(tmp_path: Path, command: str) -> None:
    settings = tmp_path / "config.json5"
    settings.write_text("{ interval: 1e12 }")
    target = tmp_path / "opencode.json"
    target.write_text('{"provider": {"remote": {"options": {"baseURL": "http://192.0.2.1/v1"}}}}')
    out = subprocess.run([sys.executable, "-m", "syncd", command, "--config", str(target)],
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "SYNCD_CONFIG": str(settings),
                              "SYNCD_DETECT_PORTS": "0,0,0"})
    assert out.returncode == 2, out.stderr  # the user's own settings: exit 2, as a wrong flag
    assert "interval: must be between 1s and 7d" in out.stderr and "Traceback" not in out.stderr
