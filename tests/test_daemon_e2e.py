"""`syncd run` end to end: the real daemon in a subprocess, fake providers on 127.0.0.1, its log read live."""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from syncd import jsonc
from tests.fakes import FakeProvider, fake_provider, wait_until  # noqa: F401  (fixture)

Factory = Callable[..., FakeProvider]
Line = dict[str, Any]
Pred = Callable[[Line], bool]
WAIT = 20.0  # generous bound for one condition on a loaded 2-core CI machine; never a sleep


# --- the daemon as a user runs it ---------------------------------------------------------------


class DaemonProc:
    """`syncd run --log-format json -v` in the isolated home; stderr parsed line by line."""

    def __init__(self, env: Mapping[str, str], *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "syncd", "run", "--log-format", "json", "-v", *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=dict(env),
        )
        self.lines: list[Line] = []
        self.raw: list[str] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            try:
                line = json.loads(raw)
            except ValueError:
                line = {"event": raw.rstrip("\n"), "unparsed": True}
            with self._lock:
                self.raw.append(raw)
                self.lines.append(line if isinstance(line, dict) else {"event": str(line)})

    def snapshot(self, since: int = 0) -> list[Line]:
        with self._lock:
            return list(self.lines[since:])

    def mark(self) -> int:
        with self._lock:
            return len(self.lines)

    def count(self, pred: Pred, since: int = 0) -> int:
        return sum(1 for line in self.snapshot(since) if pred(line))

    def wait(self, pred: Pred, *, since: int = 0, n: int = 1, timeout: float = WAIT) -> Line:
        """The `n`th line after `since` matching `pred`; fails with the log's tail on timeout."""
        end = time.monotonic() + timeout
        while True:
            hits = [line for line in self.snapshot(since) if pred(line)]
            if len(hits) >= n:
                return hits[n - 1]
            if self.proc.poll() is not None and self._reader.is_alive():
                self._reader.join(timeout=5)  # the exit came first: read the rest, look again
                continue
            if time.monotonic() > end or self.proc.poll() is not None:
                tail = "".join(self.raw[-25:])
                pytest.fail(f"no {n} matching log line(s) (exit {self.proc.poll()}); log tail:\n{tail}")
            time.sleep(0.02)

    def ready(self) -> Line:
        return self.wait(ev("daemon ready"))

    def send(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 5.0) -> int:
        """SIGTERM, then the exit code (the promise: a clean stop within 5 s)."""
        self.send(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._reader.join(timeout=5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def stderr_text(self) -> str:
        with self._lock:
            return "".join(self.raw)


def ev(event: str, **fields: Any) -> Pred:
    """A predicate: the log line's event is `event` and its fields include `fields`."""
    def pred(line: Line) -> bool:
        return line.get("event") == event and all(line.get(k) == v for k, v in fields.items())
    return pred


def synced(provider: str, **fields: Any) -> Pred:
    return ev("provider synced", provider=provider, **fields)


@pytest.fixture
def daemon(isolated_home: Path, fake_provider: Factory) -> Iterator[Callable[..., DaemonProc]]:  # noqa: F811
    """Factory: start a daemon with `SYNCD_CONFIG=settings` (+ env); every one is killed at teardown."""
    started: list[DaemonProc] = []

    def start(settings: Path, *args: str, env: Mapping[str, str] | None = None) -> DaemonProc:
        full = {**os.environ, "SYNCD_CONFIG": str(settings), "SYNCD_DETECT_PORTS": "0,0,0",
                **(env or {})}
        d = DaemonProc(full, *args)
        started.append(d)
        return d

    yield start
    for d in started:
        d.kill()


# --- files -------------------------------------------------------------------------------------


def block(url: str, models: str = "{}", extra: str = "") -> str:
    return (f'{{\n      "npm": "@ai-sdk/openai-compatible",\n'
            f'      "options": {{ "baseURL": "{url}"{extra} }},\n      "models": {models}\n    }}')


def config_text(providers: Mapping[str, str]) -> str:
    """A hand-written JSONC target with comments and trailing commas; `providers`: id -> block."""
    body = ",\n".join(f'    // {pid}, by hand\n    "{pid}": {b}' for pid, b in providers.items())
    return ('{\n  "$schema": "https://opencode.ai/config.json",\n  /* keep this comment */\n'
            f'  "provider": {{\n{body},\n  }},\n}}\n')


def target(home: Path, providers: Mapping[str, FakeProvider], name: str = "opencode.jsonc") -> Path:
    folder = home / "oc" / name.split(".")[0]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(config_text({pid: block(f.base_url) for pid, f in providers.items()}))
    return path


def settings_file(home: Path, configs: list[Path], extra: str = "", local_interval: str = "1s") -> Path:
    path = home / "syncd-settings.json5"
    save_by_rename(path, settings_text(configs, extra, local_interval))
    return path


def settings_text(configs: list[Path], extra: str = "", local_interval: str = "1s") -> str:
    return (f"{{configs: {json.dumps([str(c) for c in configs])}, local_interval: \"{local_interval}\", "
            f"detect: false, notify: {{desktop: false}}, {extra}}}\n")


def save_by_rename(path: Path, text: str) -> None:
    """How editors save: write a sibling, then rename it over the file."""
    tmp = path.with_name(f".{path.name}.editor~")
    tmp.write_text(text)
    os.replace(tmp, path)


def models_in(path: Path, pid: str) -> dict[str, Any]:
    return dict(jsonc.parse(path.read_text())["provider"][pid].get("models") or {})


def chat_ids(fake: FakeProvider) -> set[str]:
    return {m["id"] for m in fake.models if not m.get("embedding")}


def edit(path: Path, json_path: list[Any], value: Any) -> None:
    save_by_rename(path, jsonc.modify(path.read_text(), json_path, value))


# --- syncing ------------------------------------------------------------------------------------


def test_model_pulled_upstream_appears_within_one_interval(
    isolated_home: Path, fake_provider: Factory, daemon: Callable[..., DaemonProc],  # noqa: F811
) -> None:
    ol = fake_provider("ollama")
    cfg = target(isolated_home, {"ollama": ol})
    d = daemon(settings_file(isolated_home, [cfg]))
    d.ready()
    assert set(models_in(cfg, "ollama")) == chat_ids(ol)
    assert "/* keep this comment */" in cfg.read_text()

    ol.models.append({"id": "llama3.2:3b", "context": 131072, "tools": True})
    at = d.mark()
    # the run in flight may have fetched before the pull; the next one (one interval on) has it
    hit = d.wait(synced("ollama"), since=at, n=2)
    runs = [x for x in d.snapshot(at) if synced("ollama")(x)]
    assert any(x["added"] == 1 for x in runs[:2]), hit
    assert "llama3.2:3b" in models_in(cfg, "ollama")
    assert d.stop() == 0


def test_hand_deletion_saved_by_rename_is_revalidated_into_a_tombstone(
    isolated_home: Path, fake_provider: Factory, daemon: Callable[..., DaemonProc],  # noqa: F811
) -> None:
    ol = fake_provider("ollama")
    cfg = target(isolated_home, {"ollama": ol})
    d = daemon(settings_file(isolated_home, [cfg]))
    d.ready()
    gone = sorted(models_in(cfg, "ollama"))[0]

    at = d.mark()
    edit(cfg, ["provider", "ollama", "models", gone], jsonc.REMOVE)
    d.wait(ev("file changed", path=str(cfg)), since=at)
    line = d.wait(ev("managed models deleted by hand", provider="ollama"), since=at)
    assert line["tombstoned"] == [gone]
    d.wait(ev("target revalidated", target=str(cfg), valid=True), since=at)
    # two more scheduled runs, the model still served: a tombstone is never re-added
    after = d.mark()
    d.wait(synced("ollama", status="ok"), since=after, n=2)
    assert gone not in models_in(cfg, "ollama")
    assert gone in chat_ids(ol)
    assert d.stop() == 0


def test_invalid_save_is_reported_and_left_alone_and_fixing_it_resumes_syncing(
    isolated_home: Path, fake_provider: Factory, daemon: Callable[..., DaemonProc],  # noqa: F811
) -> None:
    ol = fake_provider("ollama")
    cfg = target(isolated_home, {"ollama": ol})
    d = daemon(settings_file(isolated_home, [cfg]))
    d.ready()
    good = cfg.read_text()
    broken = good.replace('"provider": {', '"provider": {{', 1)
    broken_line = broken.splitlines().index(next(x for x in broken.splitlines() if "{{" in x)) + 1

    at = d.mark()
    save_by_rename(cfg, broken)
    line = d.wait(ev("target invalid; left alone until fixed", target=str(cfg)), since=at)
    assert line["error"].startswith(f"{cfg}:{broken_line}:")
    ol.models.append({"id": "phi4:14b", "context": 16384})
    d.wait(ev("provider not synced", provider="ollama"), since=at, n=2)  # runs go on, write nothing
    assert cfg.read_text() == broken
    # reported once per distinct content, not once per run
    assert d.count(ev("target invalid; left alone until fixed"), since=at) == 1

    fixed = d.mark()
    save_by_rename(cfg, good)
    d.wait(ev("target valid again", target=str(cfg)), since=fixed)
    d.wait(lambda x: synced("ollama")(x) and x["added"] == 1, since=fixed)
    assert "phi4:14b" in models_in(cfg, "ollama")
    assert d.stop() == 0


def test_own_writes_trigger_no_extra_cycle_and_sigusr1_syncs_now(
    isolated_home: Path, fake_provider: Factory, daemon: Callable[..., DaemonProc],  # noqa: F811
) -> None:
    ol = fake_provider("ollama")
    cfg = target(isolated_home, {"ollama": ol})
    d = daemon(settings_file(isolated_home, [cfg], local_interval="1h"))  # no scheduled runs
    d.ready()
    ol.models.append({"id": "mistral:7b", "context": 32768})
    d.send(signal.SIGUSR1)
    d.wait(lambda x: synced("ollama")(x) and x["added"] == 1)
    assert "mistral:7b" in models_in(cfg, "ollama")
    # a hand edit is the barrier: the watcher reports events in order, so any event from the
    # two writes above was handled before this one
    save_by_rename(cfg, cfg.read_text().replace("keep this comment", "keep this comment too"))
    d.wait(ev("target revalidated", target=str(cfg)))
    assert d.count(ev("file changed")) == 1
    assert d.count(synced("ollama")) == 2  # the first cycle and SIGUSR1's: nothing else
    assert d.stop() == 0


def test_new_provider_block_added_by_hand_is_synced_at_once(
    isolated_home: Path, fake_provider: Factory, daemon: Callable[..., DaemonProc],  # noqa: F811
) -> None:
    ol, lms = fake_provider("ollama"), fake_provider("lmstudio")
    cfg = target(isolated_home, {"ollama": ol})
    d = daemon(settings_file(isolated_home, [cfg], local_interval="1h"))
    d.ready()
    at = d.mark()
    edit(cfg, ["provider", "lmstudio"], {"npm": "@ai-sdk/openai-compatible",
                                          "options": {"baseURL": lms.base_url}, "models": {}})
    line = d.wait(synced("lmstudio", status="ok"), since=at)
    assert line["added"] == len(chat_ids(lms))
    assert set(models_in(cfg, "lmstudio")) == chat_ids(lms)
    assert d.count(synced("ollama"), since=at) == 0  # only the new provider ran
    assert d.stop() == 0


def test_user_owned_model_not_served_gets_a_did_you_mean_warning_once(
    isolated_home: Path, fake_provider: Factory, daemon: Callable[..., DaemonProc],  # noqa: F811
) -> None:
    ol = fake_provider("ollama")
    cfg = target(isolated_home, {"ollama": ol})
    d = daemon(settings_file(isolated_home, [cfg], local_interval="1h"))
    d.ready()
    at = d.mark()

    def typo(x: Line) -> bool:
        return x.get("level") == "warning" and "qwen3-coder:32b" in x["event"]

    edit(cfg, ["provider", "ollama", "models", "qwen3-coder:32b"], {"name": "typo"})
    line = d.wait(typo, since=at)
    assert "did you mean `qwen3-coder:30b`" in line["event"]
    assert line["provider"] == "ollama"
    assert models_in(cfg, "ollama")["qwen3-coder:32b"] == {"name": "typo"}  # never touched
    for n in range(3):  # saves that leave the typo as it is: said once, not on every save
        save_by_rename(cfg, cfg.read_text().replace("keep this comment", f"keep this comment {n}"))
        d.wait(ev("target revalidated"), since=at, n=n + 2)
    assert d.count(typo, since=at) == 1
    edit(cfg, ["provider", "ollama", "models", "qwen3-coder:32b"], jsonc.REMOVE)  # fixed ...
    d.wait(ev("target revalidated"), since=at, n=5)
    edit(cfg, ["provider", "ollama", "models", "qwen3-coder:32b"], {"name": "again"})  # ... back
    d.wait(typo, since=at, n=2)
    assert d.stop() == 0


# --- settings, signals, systemd -----------------------------------------------------------------


def test_settings_file_change_is_reloaded_with_its_new_interval(
    isolated_home: Path, fake_provider: Factory, daemon: Callable[..., DaemonProc],  # noqa: F811
) -> None:
    ol = fake_provider("ollama")
    cfg = target(isolated_home, {"ollama": ol})
    settings = settings_file(isolated_home, [cfg], local_interval="1h")
    d = daemon(settings)
    d.ready()
    at = d.mark()
    save_by_rename(settings, settings_text([cfg], local_interval="1s"))
    d.wait(ev("settings reloaded"), since=at)
    d.wait(synced("ollama"), since=at, n=3)  # an hour-long interval would give none
    assert d.stop() == 0


class NotifySocket:
    """A datagram socket standing in for systemd's `$NOTIFY_SOCKET`."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="sdn", dir="/tmp")  # AF_UNIX paths are short
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue
            except OSError:
                return

    def firsts(self) -> list[str]:
        return [m.split("\n", 1)[0] for m in list(self.messages)]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()
        os.unlink(self.path)
        os.rmdir(self.dir)


def test_sd_notify_ready_watchdog_reloading_and_stopping_and_sighup_reloads(
    isolated_home: Path, fake_provider: Factory, daemon: Callable[..., DaemonProc],  # noqa: F811
) -> None:
    ol = fake_provider("ollama")
    cfg = target(isolated_home, {"ollama": ol})
    sd = NotifySocket()
    try:
        d = daemon(settings_file(isolated_home, [cfg], local_interval="1h"),
                   env={"NOTIFY_SOCKET": sd.path, "WATCHDOG_USEC": "400000"})
        d.ready()
        assert wait_until(lambda: sd.firsts().count("WATCHDOG=1") >= 2, timeout=WAIT)
        first = sd.firsts()
        assert first[0] == "READY=1" and sd.messages[0].startswith("READY=1\nSTATUS=1 provider ok")

        at = d.mark()
        d.send(signal.SIGHUP)
        d.wait(ev("settings reloaded"), since=at)
        assert wait_until(lambda: "RELOADING=1" in sd.firsts(), timeout=WAIT)
        assert wait_until(lambda: sd.firsts()[sd.firsts().index("RELOADING=1"):].count("READY=1") == 1,
                          timeout=WAIT)
        reloading = next(m for m in sd.messages if m.startswith("RELOADING=1"))
        assert int(reloading.split("MONOTONIC_USEC=", 1)[1]) > 0
        assert d.stop() == 0
        assert wait_until(lambda: "STOPPING=1" in sd.firsts(), timeout=WAIT)
        assert sd.firsts()[-1] == "STOPPING=1"  # nothing after it
    finally:
        sd.close()


def test_sigterm_during_a_fetch_cancels_it_and_stops_at_once(
    isolated_home: Path, fake_provider: Factory, daemon: Callable[..., DaemonProc],  # noqa: F811
) -> None:
    gw = fake_provider("openai")
    cfg = target(isolated_home, {"gw": gw})
    d = daemon(settings_file(isolated_home, [cfg]))
    d.ready()
    before = cfg.read_bytes()
    gw.delay = 25.0  # the next run's answer would take 25 s (the read timeout is 10 s)
    gw.models.append({"id": "acme/new-model", "context": 8192})
    seen = len(gw.requests)
    assert wait_until(lambda: len(gw.requests) > seen, timeout=WAIT)
    d.send(signal.SIGTERM)
    assert d.proc.wait(timeout=8) == 0  # the fetch is cancelled, not waited for
    d.kill()  # joins the reader
    assert cfg.read_bytes() == before  # nothing half-written
    assert sorted(os.listdir(cfg.parent)) == [cfg.name]  # no temp file left behind
    assert any(ev("daemon stopping")(x) for x in d.snapshot())


def test_second_daemon_exits_1_once_beside_it_is_safe_and_sigint_stops_it(
    isolated_home: Path, fake_provider: Factory, daemon: Callable[..., DaemonProc],  # noqa: F811
) -> None:
    ol = fake_provider("ollama")
    cfg = target(isolated_home, {"ollama": ol})
    settings = settings_file(isolated_home, [cfg])
    d = daemon(settings)
    d.ready()
    second = daemon(settings)
    assert second.proc.wait(timeout=WAIT) == 1
    second.kill()
    assert "already running" in second.stderr_text()

    env = {**os.environ, "SYNCD_CONFIG": str(settings), "SYNCD_DETECT_PORTS": "0,0,0"}
    for i in range(3):  # both write the same target while the daemon keeps its 1 s schedule
        ol.models.append({"id": f"beside:{i}b", "context": 8192})
        out = subprocess.run([sys.executable, "-m", "syncd", "once", "--config", str(cfg),
                              "--no-notify"], capture_output=True, text=True, env=env,
                             timeout=60, check=False)
        assert out.returncode == 0, out.stderr
        assert f"beside:{i}b" in models_in(cfg, "ollama")
    at = d.mark()
    d.wait(synced("ollama", status="ok"), since=at)  # the daemon is still at work
    assert set(models_in(cfg, "ollama")) == chat_ids(ol)
    assert "/* keep this comment */" in cfg.read_text()
    assert _next_run(env) is not None  # `syncd status` shows when the daemon runs it next
    d.send(signal.SIGINT)  # Ctrl-C stops as cleanly as SIGTERM
    assert d.proc.wait(timeout=5) == 0
    d.wait(ev("daemon stopping"))
    assert _next_run(env) is None  # no daemon, no schedule


def _next_run(env: dict[str, str]) -> str | None:
    out = subprocess.run([sys.executable, "-m", "syncd", "status", "--json"], capture_output=True,
                         text=True, env=env, timeout=60, check=True)
    (row,) = [r for r in json.loads(out.stdout)["providers"] if r["provider"] == "ollama"]
    return row["next_run"]


# --- isolation and hygiene ----------------------------------------------------------------------


def test_hung_provider_does_not_delay_the_other_providers_schedules(
    isolated_home: Path, fake_provider: Factory, daemon: Callable[..., DaemonProc],  # noqa: F811
) -> None:
    ol, hung = fake_provider("ollama"), fake_provider("openai")
    cfg = target(isolated_home, {"ollama": ol, "hung": hung})  # one target, one writer
    d = daemon(settings_file(isolated_home, [cfg], extra='timeouts: {read: "30s", total: "30s"}'))
    d.ready()
    hung.fault = "hang"
    seen = len(hung.requests)
    assert wait_until(lambda: len(hung.requests) > seen, timeout=WAIT)
    at = d.mark()
    d.wait(synced("ollama", status="ok"), since=at, n=3)  # three runs of ollama on its 1 s beat
    assert d.count(synced("hung"), since=at) == 0  # ...while hung's run is still waiting
    assert d.stop() == 0


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_many_cycles_with_toggling_faults_leak_no_fds_or_tasks(
    isolated_home: Path, fake_provider: Factory, daemon: Callable[..., DaemonProc],  # noqa: F811
) -> None:
    ol, gw, lms = fake_provider("ollama"), fake_provider("openai"), fake_provider("lmstudio")
    a = target(isolated_home, {"ollama": ol, "gw": gw}, "opencode.jsonc")
    b = target(isolated_home, {"lms": lms}, "other.json")
    d = daemon(settings_file(isolated_home, [a, b],
                             extra='timeouts: {connect: "1s", read: "1s", total: "2s"}'))
    d.ready()
    faults = [None, "500", "hang", "html", None, "401", "truncated", None]
    samples: list[tuple[float, int]] = []
    start = time.monotonic()
    i = 0
    while time.monotonic() - start < 16:
        for n, fake in enumerate((ol, gw, lms)):
            fake.fault = faults[(i + n) % len(faults)]
        if i % 3 == 0:
            fake.models.append({"id": f"churn-{i}", "context": 4096})
        samples.append((time.monotonic() - start, _fds(d.pid)))
        time.sleep(0.25)  # pacing the fault changes, not an assertion
        i += 1
    for fake in (ol, gw, lms):
        fake.fault = None
    lines = d.snapshot()
    tasks = [x["tasks"] for x in lines if ev("cycle done")(x)]
    assert len(tasks) >= 20, "too few cycles to say anything"
    # a leak grows with every cycle (30+ of them here); runs in flight only make noise around a
    # flat baseline, so compare the baselines (the median) of the first and last thirds
    early, late = tasks[: len(tasks) // 3], tasks[-len(tasks) // 3:]
    assert statistics.median(late) <= statistics.median(early) + 1, (early, late)
    fd_early = [n for t, n in samples if 3 <= t < 8]
    fd_late = [n for t, n in samples if t >= 11]
    assert statistics.median(fd_late) <= statistics.median(fd_early) + 2, (fd_early, fd_late)
    assert d.count(ev("cycle failed")) == 0  # every failure was a report, none a crash
    assert d.stop() == 0


def test_log_never_shows_the_api_key(
    isolated_home: Path, fake_provider: Factory, daemon: Callable[..., DaemonProc],  # noqa: F811
) -> None:
    key = "sk-e2e-5f0c3a9d7b21e4"
    gw = fake_provider("openai", api_key=key)
    cfg = isolated_home / "oc" / "opencode.json"
    cfg.parent.mkdir(parents=True)
    cfg.write_text(config_text({"gw": block(gw.base_url, extra=f', "apiKey": "{key}"')}))
    d = daemon(settings_file(isolated_home, [cfg]))
    d.ready()
    d.wait(synced("gw", status="ok"))  # the key was sent and accepted
    at = d.mark()
    gw.fault = "401"
    d.wait(synced("gw", status="error"), since=at)
    edit(cfg, ["provider", "gw", "models", "by-hand"], {"name": key})  # the key in a value, too
    d.wait(ev("target revalidated"), since=at)
    gw.fault = None
    d.wait(synced("gw", status="ok"), since=d.mark())
    assert d.stop() == 0
    text = d.stderr_text()
    assert any(ev("provider synced")(json.loads(x)) for x in text.splitlines())
    assert key not in text
    assert key[3:] not in text
