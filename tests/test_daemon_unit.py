"""The daemon against a fake Engine: first cycle, coalescing, backoff, watched changes, signals."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from syncd.daemon.run import Daemon, status_line
from syncd.daemon.schedule import backoff
from syncd.errors import FetchError, SettingsError
from syncd.report import ProviderReport, Status, TargetReport
from syncd.sync.outcome import Fetched
from syncd.sync.rounds import Round
from syncd.sync.targets import JobSpec

HERE = Path(__file__).resolve().parent


@dataclass
class FakeEngine:
    """Satisfies syncd.daemon.Engine; records calls; `hold` makes a sync wait until it is set."""

    specs: list[JobSpec]
    files: list[Path]
    errors: dict[str, ProviderReport] = field(default_factory=dict)
    hold: asyncio.Event | None = None
    written: dict[Path, str] = field(default_factory=dict)
    revalidations: dict[Path, TargetReport] = field(default_factory=dict)
    auth_failed: list[tuple[Path, str]] = field(default_factory=list)
    reload_error: bool = False
    calls: list[tuple[object, ...]] = field(default_factory=list)
    active: dict[Path, int] = field(default_factory=dict)
    max_active: int = 0
    stores_looked: int = 0  # local_stores() calls: each walks /proc in the real engine
    synced: asyncio.Queue[tuple[Path, tuple[str, ...]]] = field(default_factory=asyncio.Queue)

    def watched_files(self) -> list[Path]:
        return list(self.files)

    def jobs(self) -> list[JobSpec]:
        return list(self.specs)

    def own_writes(self, target: Path) -> frozenset[str]:
        return frozenset([self.written[target]] if target in self.written else [])

    async def fetch(self, target: Path, provider_ids: Sequence[str] | None = None) -> Round:
        """A provider's run: recorded as ("sync", target, ids) when it starts; `hold` holds it."""
        ids = tuple(provider_ids or ())
        self.calls.append(("sync", target, ids))
        self.active[target] = self.active.get(target, 0) + 1
        self.max_active = max(self.max_active, self.active[target])
        try:
            if self.hold is not None:
                await self.hold.wait()
        finally:
            self.active[target] -= 1
        return Round(target, tuple(Fetched(p, FetchError("fake"), 0) for p in ids))

    def unchanged(self, target: Path, rnd: Round) -> TargetReport | None:
        return None  # every answer goes to the writer

    async def apply(self, target: Path, rounds: Sequence[Round]) -> TargetReport:
        ids = tuple(f.pid for r in rounds for f in r.fetched)
        self.calls.append(("apply", target, ids))
        reports = tuple(self.errors.get(p, ProviderReport(id=p, status=Status.OK)) for p in ids)
        await self.synced.put((target, ids))
        return TargetReport(path=str(target), providers=reports)

    def stop(self) -> None:
        self.calls.append(("stop",))

    async def revalidate(
        self, target: Path, known: Mapping[str, frozenset[str]] | None = None
    ) -> TargetReport:
        self.calls.append(("revalidate", target))
        return self.revalidations.get(target, TargetReport(path=str(target)))

    def reload(self) -> None:
        self.calls.append(("reload",))
        if self.reload_error:
            raise SettingsError("config.json5:3: unknown key 'intervall'")

    def auth_failed_providers(self) -> list[tuple[Path, str]]:
        return list(self.auth_failed)

    def local_stores(self, kinds: object = None) -> list[object]:
        self.stores_looked += 1
        return []  # no provider on this machine: the store watch stays idle (tests/test_stores.py)

    async def list_fingerprint(self, target: Path, provider_id: str, *, rescan: bool = False) -> None:
        return None

    async def aclose(self) -> None:
        self.calls.append(("aclose",))


def spec(target: Path, pid: str, interval: float = 60.0, fp: str = "f0") -> JobSpec:
    return JobSpec(target=target, provider_id=pid, interval=interval, fingerprint=fp)


def synced_ids(engine: FakeEngine) -> list[tuple[Path, str]]:
    return sorted((c[1], p) for c in engine.calls if c[0] == "sync" for p in c[2])  # type: ignore[misc]


@asynccontextmanager
async def running(engine: FakeEngine, notes: list[str] | None = None) -> AsyncIterator[Daemon]:
    notes = [] if notes is None else notes
    ready = asyncio.Event()

    def notify(msg: str) -> bool:
        notes.append(msg)
        if msg.startswith("READY=1"):
            ready.set()
        return True

    daemon = Daemon(engine, notify=notify, rng=lambda: 0.5)
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.serve(stop))
    await asyncio.wait_for(ready.wait(), timeout=10)
    while not engine.synced.empty():  # the first cycle's runs: tests wait for later ones
        engine.synced.get_nowait()
    try:
        yield daemon
    finally:
        stop.set()
        assert await asyncio.wait_for(task, timeout=10) == 0


async def wait_for_call(engine: FakeEngine, call: tuple[object, ...]) -> None:
    for _ in range(500):
        if call in engine.calls:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{call} never happened: {engine.calls}")


@pytest.fixture
def targets(tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "a" / "opencode.json", tmp_path / "b" / "opencode.jsonc"
    for t in (a, b):
        t.parent.mkdir()
        t.write_text("{}\n")
    return a, b


def test_status_line_counts_and_next_run() -> None:
    assert status_line(3, 0, 57.6) == "3 providers ok, next in 58s"
    assert status_line(1, 2, None) == "1 provider ok, 2 failing"


async def test_first_cycle_syncs_every_job_before_ready(targets: tuple[Path, Path]) -> None:
    a, b = targets
    engine = FakeEngine([spec(a, "ollama"), spec(a, "lmstudio"), spec(b, "gw")], [a, b])
    notes: list[str] = []
    async with running(engine, notes) as daemon:
        assert synced_ids(engine) == sorted((s.target, s.provider_id) for s in engine.specs)
        # one call per target: its providers go together, under one writer
        assert sorted(c[1] for c in engine.calls if c[0] == "sync") == sorted([a, b])  # type: ignore[type-var]
        assert daemon.job_keys() == sorted((s.target, s.provider_id) for s in engine.specs)
    assert notes[0].startswith("READY=1\nSTATUS=3 providers ok, next in")
    assert notes[-1] == "STOPPING=1"
    assert engine.calls[-1] == ("aclose",)


async def test_triggers_during_a_run_coalesce_into_one_follow_up(
    targets: tuple[Path, Path],
) -> None:
    a, _ = targets
    engine = FakeEngine([spec(a, "ollama"), spec(a, "lmstudio")], [a])
    async with running(engine) as daemon:
        engine.calls.clear()
        engine.hold = asyncio.Event()
        daemon.sync_all()
        await wait_for_call(engine, ("sync", a, ("lmstudio", "ollama")))
        for _ in range(5):  # SIGUSR1 five times while the run is in flight
            daemon.sync_all()
        engine.hold.set()
        for _ in range(2):
            await asyncio.wait_for(engine.synced.get(), timeout=10)
        await asyncio.sleep(0.1)
        one_run = ("sync", a, ("lmstudio", "ollama"))
        assert [c for c in engine.calls if c[0] == "sync"] == [one_run] * 2
        assert engine.max_active == 1


async def test_failed_provider_backs_off_and_retry_after_is_honoured(
    targets: tuple[Path, Path],
) -> None:
    a, _ = targets
    interval = 900.0
    engine = FakeEngine([spec(a, p, interval) for p in ("down", "limited", "ok")], [a])
    engine.errors["down"] = ProviderReport(
        id="down", status=Status.ERROR, error_label="unreachable"
    )
    engine.errors["limited"] = ProviderReport(
        id="limited", status=Status.ERROR, error_label="rate-limited", retry_after=400.0
    )
    before = datetime.now(UTC)
    async with running(engine) as daemon:
        after = datetime.now(UTC)
        for pid, delay in (("down", backoff(1, interval)), ("limited", 400.0), ("ok", interval)):
            nxt = daemon.next_run(a, pid)
            assert nxt is not None
            assert before + timedelta(seconds=delay) <= nxt <= after + timedelta(seconds=delay), pid
        daemon.sync_all()  # a second failure doubles the delay
        await asyncio.wait_for(engine.synced.get(), timeout=10)  # one run: the target's three
        await asyncio.sleep(0.05)  # the run's bookkeeping follows the engine's return
        nxt, now = daemon.next_run(a, "down"), datetime.now(UTC)
        assert nxt is not None and nxt >= now + timedelta(seconds=backoff(2, interval) - 5)


async def test_edited_target_adds_syncs_and_drops_jobs(targets: tuple[Path, Path]) -> None:
    a, _ = targets
    engine = FakeEngine([spec(a, "ollama"), spec(a, "old")], [a])
    async with running(engine) as daemon:
        engine.calls.clear()
        engine.specs = [spec(a, "ollama"), spec(a, "new")]
        a.write_text('{"provider": {"new": {}}}\n')
        await wait_for_call(engine, ("sync", a, ("new",)))
        assert ("revalidate", a) in engine.calls
        assert daemon.job_keys() == [(a, "new"), (a, "ollama")]
        assert daemon.next_run(a, "old") is None


async def test_changed_provider_fingerprint_syncs_it_now(targets: tuple[Path, Path]) -> None:
    a, _ = targets
    engine = FakeEngine([spec(a, "ollama"), spec(a, "gw")], [a])
    async with running(engine):
        engine.calls.clear()
        engine.specs = [spec(a, "ollama"), spec(a, "gw", fp="new-baseurl")]
        a.write_text('{"provider": {"gw": {"options": {"baseURL": "http://x"}}}}\n')
        await wait_for_call(engine, ("sync", a, ("gw",)))
        assert [c for c in engine.calls if c[0] == "sync"] == [("sync", a, ("gw",))]


async def test_model_stores_are_looked_for_again_only_when_a_hand_edit_changed_a_job(
    targets: tuple[Path, Path]
) -> None:
    a, _ = targets
    engine = FakeEngine([spec(a, "ollama")], [a])
    async with running(engine):
        engine.calls.clear()
        engine.stores_looked = 0
        a.write_text('{"theme": "dark"}\n')  # the jobs stay as they are: no walk of /proc
        await wait_for_call(engine, ("revalidate", a))
        engine.specs = [spec(a, "ollama"), spec(a, "lmstudio")]
        a.write_text('{"provider": {"lmstudio": {}}}\n')
        await wait_for_call(engine, ("sync", a, ("lmstudio",)))
        assert engine.stores_looked == 1


async def test_a_stale_buffer_save_syncs_the_providers_it_undid_now(
    targets: tuple[Path, Path]
) -> None:
    a, _ = targets
    engine = FakeEngine([spec(a, "ollama"), spec(a, "gw")], [a])
    async with running(engine):
        engine.calls.clear()
        engine.revalidations[a] = TargetReport(path=str(a), providers=(
            ProviderReport("ollama", Status.OK, restored=("qwen3:8b",)),
            ProviderReport("gw", Status.OK)))
        a.write_text('{"theme": "dark"}\n')
        await wait_for_call(engine, ("sync", a, ("ollama",)))
        assert [c for c in engine.calls if c[0] == "sync"] == [("sync", a, ("ollama",))]


async def test_unparseable_target_keeps_its_jobs(targets: tuple[Path, Path]) -> None:
    a, _ = targets
    engine = FakeEngine([spec(a, "ollama")], [a])
    async with running(engine) as daemon:
        engine.specs = []  # a target that does not parse contributes no jobs
        engine.revalidations[a] = TargetReport(path=str(a), error=f"{a}:1:2: expected '}}'")
        a.write_text("{,\n")
        await wait_for_call(engine, ("revalidate", a))
        await asyncio.sleep(0.05)
        assert daemon.job_keys() == [(a, "ollama")]


async def test_own_writes_and_noop_saves_are_ignored(targets: tuple[Path, Path]) -> None:
    a, b = targets
    engine = FakeEngine([spec(a, "ollama"), spec(b, "gw")], [a, b])
    async with running(engine):
        own = b'{"provider": {"ollama": {"models": {"m": {}}}}}\n'
        engine.written[a] = hashlib.sha256(own).hexdigest()
        a.write_bytes(own)  # what syncd itself just wrote
        b.write_text("{}\n")  # a save of the same bytes
        b.write_text('{"x": 1}\n')  # then a real edit, seen in this batch or a later one
        await wait_for_call(engine, ("revalidate", b))
        assert ("revalidate", a) not in engine.calls
        assert engine.calls.count(("revalidate", b)) == 1


async def test_settings_change_reloads_and_auth_change_retries_auth_failures(
    targets: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, _ = targets
    settings = tmp_path / "syncd" / "config.json5"
    settings.parent.mkdir()
    monkeypatch.setenv("SYNCD_CONFIG", str(settings))
    auth = Path(os.environ["XDG_DATA_HOME"]) / "opencode" / "auth.json"
    auth.parent.mkdir(parents=True)
    engine = FakeEngine([spec(a, "ollama"), spec(a, "gw")], [a, settings, auth])
    async with running(engine):
        engine.calls.clear()
        settings.write_text("{interval: '5m'}")
        await wait_for_call(engine, ("reload",))
        engine.auth_failed = [(a, "gw")]
        auth.write_text('{"gw": {"type": "api", "key": "k"}}')
        await wait_for_call(engine, ("sync", a, ("gw",)))


async def test_sighup_reloads_and_tells_systemd(targets: tuple[Path, Path]) -> None:
    a, _ = targets
    engine = FakeEngine([spec(a, "ollama")], [a])
    notes: list[str] = []
    async with running(engine, notes):
        os.kill(os.getpid(), signal.SIGHUP)  # the handler is on this running loop
        await wait_for_call(engine, ("reload",))
        engine.reload_error = True
        os.kill(os.getpid(), signal.SIGHUP)  # a bad settings file is logged, not fatal
        await asyncio.sleep(0.1)
    reloading = [n for n in notes if n.startswith("RELOADING=1")]
    assert len(reloading) == 2 and "\nMONOTONIC_USEC=" in reloading[0]
    after = notes[notes.index(reloading[0]) + 1]
    assert after.startswith("READY=1")


async def test_sigusr1_syncs_everything_now(targets: tuple[Path, Path]) -> None:
    a, b = targets
    engine = FakeEngine([spec(a, "ollama"), spec(b, "gw")], [a, b])
    async with running(engine):
        engine.calls.clear()
        os.kill(os.getpid(), signal.SIGUSR1)
        for _ in range(2):
            await asyncio.wait_for(engine.synced.get(), timeout=10)
        assert synced_ids(engine) == [(a, "ollama"), (b, "gw")]


async def test_notify_socket_receives_ready_status_watchdog_stopping(
    targets: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, _ = targets
    sock_path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(sock_path))
        sock.setblocking(False)
        monkeypatch.setenv("NOTIFY_SOCKET", str(sock_path))
        monkeypatch.setenv("WATCHDOG_USEC", "100000")  # ping every 50 ms
        monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
        engine = FakeEngine([spec(a, "ollama")], [a])
        daemon = Daemon(engine, rng=lambda: 0.5)
        stop = asyncio.Event()
        task = asyncio.create_task(daemon.serve(stop))
        loop = asyncio.get_running_loop()
        got: list[str] = []
        while "WATCHDOG=1" not in got:
            got.append((await asyncio.wait_for(loop.sock_recv(sock, 4096), timeout=10)).decode())
        stop.set()
        assert await asyncio.wait_for(task, timeout=10) == 0
        while got[-1] != "STOPPING=1":
            got.append((await asyncio.wait_for(loop.sock_recv(sock, 4096), timeout=10)).decode())
    assert got[0].startswith("READY=1\nSTATUS=1 provider ok, next in ")


SCRIPT = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from test_daemon_unit import FakeEngine, spec
    from syncd.daemon.run import serve
    from syncd.report import TargetReport

    work = Path({work!r})
    class Slow(FakeEngine):
        async def fetch(self, target, provider_ids=None):
            if {slow!r} == "fetch" and self.calls:  # every fetch after the first cycle hangs
                (work / "started").write_text("")
                await asyncio.sleep(60)
                (work / "done").write_text("")
            return await super().fetch(target, provider_ids)

        async def apply(self, target, rounds):
            if {slow!r} == "write" and len(self.calls) > 2:  # every write after the first is slow
                (work / "started").write_text("")
                await asyncio.sleep(1.0)
                (work / "done").write_text("")
            return await super().apply(target, rounds)

    async def main():
        target = work / "opencode.json"
        return await serve(Slow([spec(target, "ollama")], [target]))
    sys.exit(asyncio.run(main()))
""")


@pytest.mark.parametrize("slow", ["write", "fetch"])
def test_sigterm_lets_a_write_in_flight_land_and_cancels_fetches(tmp_path: Path, slow: str) -> None:
    (tmp_path / "opencode.json").write_text("{}")
    sock_path = tmp_path / "notify.sock"
    script = tmp_path / "daemon.py"
    script.write_text(SCRIPT.format(tests=str(HERE), work=str(tmp_path), slow=slow))
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(sock_path))
        sock.settimeout(20)
        env = {**os.environ, "NOTIFY_SOCKET": str(sock_path),
               "PYTHONPATH": str(HERE.parent)}
        proc = subprocess.Popen([sys.executable, str(script)], env=env)
        try:
            assert sock.recv(4096).startswith(b"READY=1")
            proc.send_signal(signal.SIGUSR1)
            for _ in range(500):
                if (tmp_path / "started").exists() or proc.poll() is not None:
                    break
                time.sleep(0.02)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
        messages = []
        sock.settimeout(1)
        while True:
            try:
                messages.append(sock.recv(4096).decode())
            except TimeoutError:
                break
    assert (tmp_path / "started").exists()
    # a write in flight lands; a fetch in flight (here one that would hang for a minute) is
    # cancelled, so the daemon exits well within the wait above
    assert (tmp_path / "done").exists() == (slow == "write")
    assert messages[-1] == "STOPPING=1"


def test_second_daemon_for_a_state_dir_exits_1(tmp_path: Path) -> None:
    from syncd.daemon.run import run_daemon
    from syncd.sync.locks import acquire_daemon_lock

    held = acquire_daemon_lock(tmp_path / "state")
    assert held is not None
    try:
        engine = FakeEngine([], [])
        assert run_daemon(engine, state_dir=tmp_path / "state") == 1
        assert engine.calls == []  # it never started
    finally:
        held.release()
