"""Benchmark: `syncd run` reaction time from a saved edit to its revalidation, and idle CPU and memory."""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fakes import FakeProvider  # noqa: E402

REACTION_TARGET_MS = 300.0
CPU_TARGET_PCT = 1.0
RSS_TARGET_MB = 60.0
TICKS = os.sysconf("SC_CLK_TCK")


class Daemon:
    """`syncd run --log-format json` in a throwaway home; each log line stamped when read."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "syncd", "run", "--log-format", "json"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, env=dict(env),
        )
        self.lines: list[tuple[float, dict[str, Any]]] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            now = time.monotonic()
            try:
                line = json.loads(raw)
            except ValueError:
                line = {"event": raw.rstrip()}
            with self._cond:
                self.lines.append((now, line))
                self._cond.notify_all()

    def wait(self, pred: Callable[[dict[str, Any]], bool], since: int = 0,
             timeout: float = 30.0) -> float:
        """Monotonic time at which the first matching line after index `since` was read."""
        end = time.monotonic() + timeout
        with self._cond:
            while True:
                for at, line in self.lines[since:]:
                    if pred(line):
                        return at
                left = end - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise RuntimeError(f"timed out; last lines: {self.lines[-5:]}")
                self._cond.wait(left)

    def mark(self) -> int:
        with self._cond:
            return len(self.lines)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def event(name: str) -> Callable[[dict[str, Any]], bool]:
    return lambda line: line.get("event") == name


def home_env(home: Path, settings: Path) -> dict[str, str]:
    env = {**os.environ, "HOME": str(home), "SYNCD_CONFIG": str(settings),
           "SYNCD_DETECT_PORTS": "0,0,0"}
    for var, sub in (("XDG_CONFIG_HOME", ".config"), ("XDG_DATA_HOME", ".local/share"),
                     ("XDG_STATE_HOME", ".local/state"), ("XDG_CACHE_HOME", ".cache")):
        (home / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(home / sub)
    for var in ("SYNCD_STATE_DIR", "OPENCODE_CONFIG", "NOTIFY_SOCKET", "WATCHDOG_USEC"):
        env.pop(var, None)
    return env


def write_target(path: Path, providers: Mapping[str, FakeProvider]) -> None:
    blocks = ",\n".join(
        f'    // {pid}\n    "{pid}": {{\n      "npm": "@ai-sdk/openai-compatible",\n'
        f'      "options": {{ "baseURL": "{f.base_url}" }},\n      "models": {{}}\n    }}'
        for pid, f in providers.items())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'{{\n  /* hand-written */\n  "provider": {{\n{blocks}\n  }}\n}}\n')


def write_settings(path: Path, targets: list[Path], local_interval: str) -> None:
    path.write_text(json.dumps({"configs": [str(t) for t in targets], "detect": False,
                                "local_interval": local_interval, "notify": {"desktop": False}}))


def save_by_rename(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.editor~")
    tmp.write_text(text)
    os.replace(tmp, path)


def reaction(home: Path, saves: int) -> list[float]:
    """Milliseconds from an editor's save (rename) to the daemon's "target revalidated" line."""
    fake = FakeProvider("ollama")
    target = home / "react" / "opencode.jsonc"
    settings = home / "react-settings.json"
    write_target(target, {"ollama": fake})
    write_settings(settings, [target], "1h")  # nothing scheduled: every line is the edit's
    daemon = Daemon(home_env(home / "react-home", settings))
    times: list[float] = []
    try:
        daemon.wait(event("daemon ready"))
        for i in range(saves):
            text = target.read_text().replace("/* hand-written", f"/* hand-written, save {i}")
            text = text.replace(f"save {i - 1}, ", "")
            at = daemon.mark()
            saved = time.monotonic()
            save_by_rename(target, text)
            seen = daemon.wait(event("target revalidated"), since=at)
            times.append((seen - saved) * 1000)
            # separate saves, at random moments as a person makes them (a fixed spacing would
            # lock onto the watcher's polling step and measure one phase of it only)
            time.sleep(random.uniform(0.3, 0.6))
    finally:
        daemon.stop()
        fake.close()
    return times


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def proc_status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def idle(home: Path, seconds: float) -> dict[str, float]:
    """CPU share and memory of a daemon with 3 targets and 5 providers over `seconds`."""
    fakes = {k: FakeProvider(k) for k in ("ollama", "lmstudio", "llamacpp")}
    fakes["gateway"] = FakeProvider("openai", variant="litellm")
    fakes["router"] = FakeProvider("openai", variant="openrouter")
    targets = [home / "idle" / "global" / "opencode.jsonc", home / "idle" / "proj-a" / "opencode.json",
               home / "idle" / "proj-b" / "opencode.jsonc"]
    write_target(targets[0], {k: fakes[k] for k in ("ollama", "lmstudio")})
    write_target(targets[1], {k: fakes[k] for k in ("llamacpp", "gateway")})
    write_target(targets[2], {"router": fakes["router"]})
    settings = home / "idle-settings.json"
    write_settings(settings, targets, "60s")  # the default for loopback providers
    daemon = Daemon(home_env(home / "idle-home", settings))
    try:
        daemon.wait(event("daemon ready"))
        time.sleep(2.0)  # let start-up work (imports, first cycle) settle out of the window
        pid = daemon.proc.pid
        cpu0, t0 = proc_cpu_seconds(pid), time.monotonic()
        time.sleep(seconds)
        cpu1, t1 = proc_cpu_seconds(pid), time.monotonic()
        cycles = sum(1 for _, line in daemon.lines if event("provider synced")(line))
        return {"cpu_pct": 100 * (cpu1 - cpu0) / (t1 - t0),
                "rss_mb": proc_status_kb(pid, "VmRSS") / 1024,
                "hwm_mb": proc_status_kb(pid, "VmHWM") / 1024,
                "cycles": cycles, "seconds": t1 - t0}
    finally:
        daemon.stop()
        for fake in fakes.values():
            fake.close()


def main(seconds: float, saves: int, as_json: bool) -> int:
    home = Path(tempfile.mkdtemp(prefix="syncd-daemon-bench-"))
    try:
        times = reaction(home, saves)
        use = idle(home, seconds)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    med = statistics.median(times)
    p95 = sorted(times)[max(0, round(0.95 * len(times)) - 1)]
    rows = [
        ("reaction: save -> revalidated, median", "<= 300", med, "ms",
         f"{len(times)} saves; p95 {p95:.0f} ms; min {min(times):.0f}; max {max(times):.0f}"),
        ("reaction: save -> revalidated, p95", "-", p95, "ms", ""),
        (f"idle CPU, 3 targets / 5 providers, {use['seconds']:.0f} s", "<= 1", use["cpu_pct"],
         "% of a core", f"{use['cycles']} provider runs in all (60 s loopback interval)"),
        ("idle RSS (VmRSS)", "<= 60", use["rss_mb"], "MB", ""),
        ("peak RSS (VmHWM)", "-", use["hwm_mb"], "MB", ""),
    ]
    if as_json:
        print(json.dumps([{"figure": f, "target": t, "measured": round(m, 2), "unit": u,
                           "ratio": None, "note": n} for f, t, m, u, n in rows]))
    else:
        for figure, target, measured, unit, note in rows:
            print(f"{figure:<48} {measured:>8.2f} {unit:<12} target {target:<7} {note}")
    ok = med <= REACTION_TARGET_MS and use["cpu_pct"] <= CPU_TARGET_PCT and use["rss_mb"] <= RSS_TARGET_MB
    return 0 if ok else 1


if __name__ == "__main__":
    _ap = argparse.ArgumentParser(description=__doc__)
    _ap.add_argument("--seconds", type=float, default=60.0, help="idle window (default 60)")
    _ap.add_argument("--saves", type=int, default=20, help="edits to time (default 20)")
    _ap.add_argument("--json", action="store_true", help="print rows {figure, target, measured, unit}")
    _args = _ap.parse_args()
    raise SystemExit(main(_args.seconds, _args.saves, _args.json))
