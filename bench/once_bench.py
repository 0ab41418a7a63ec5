"""Benchmark: `syncd once` wall time and peak memory, interpreter start included, against fake providers.

    .venv/bin/python bench/once_bench.py [--runs 5]

Cases (DESIGN §7, issue 4 item 9):
  a) one local provider, nothing to change          target <= 0.3 s
  b) 30 providers, each answering after 300 ms      target <= 1.2 s
  c) one gateway serving 5,000 models, fresh block  target <= 2.0 s
Each run is a fresh `python -m syncd once` process in a throwaway HOME; peak RSS is that process's
own (os.wait4), not the benchmark's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fakes import FakeProvider  # noqa: E402  (the tests' fake servers)


@dataclass(frozen=True)
class Run:
    seconds: float
    max_rss_kb: int
    code: int


def config_for(providers: dict[str, str]) -> str:
    return json.dumps({"$schema": "https://opencode.ai/config.json", "provider": {
        pid: {"npm": "@ai-sdk/openai-compatible", "name": pid, "options": {"baseURL": url},
              "models": {}}
        for pid, url in providers.items()}}, indent=2) + "\n"


def isolated_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SYNCD_", "XDG_", "OPENCODE_", "NOTIFY_", "DBUS_"))}
    env["HOME"] = str(home)
    for var, sub in (("XDG_CONFIG_HOME", ".config"), ("XDG_DATA_HOME", ".local/share"),
                     ("XDG_STATE_HOME", ".local/state"), ("XDG_CACHE_HOME", ".cache")):
        (home / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(home / sub)
    env["SYNCD_DETECT_PORTS"] = "0,0,0"
    return env


def run_once(cfg: Path, env: dict[str, str]) -> Run:
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "syncd", "once", "--no-notify", "--config", str(cfg)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        print(f"  run failed (exit {proc.returncode}): {err[-500:]}", file=sys.stderr)
    if proc.stderr:
        proc.stderr.close()
    return Run(elapsed, usage.ru_maxrss, proc.returncode)


def case(home: Path, providers: dict[str, str], runs: int, fresh: bool) -> list[Run]:
    """`fresh`: every run starts from the empty config and no state (else: warm up once, then measure)."""
    env = isolated_env(home)
    cfg = home / "opencode.json"
    text = config_for(providers)
    cfg.write_text(text)
    state = home / ".local/state/syncd"
    if not fresh:
        run_once(cfg, env)
    out = []
    for _ in range(runs):
        if fresh:
            cfg.write_text(text)
            shutil.rmtree(state, ignore_errors=True)
        out.append(run_once(cfg, env))
    return out


def bench_a(home: Path, runs: int) -> list[Run]:
    with FakeProvider("ollama") as fake:
        return case(home, {"ollama": fake.base_url}, runs, fresh=False)


def bench_b(home: Path, runs: int) -> list[Run]:
    fakes = [FakeProvider("openai") for _ in range(30)]
    try:
        for f in fakes:
            f.delay = 0.3
        return case(home, {f"gw{i}": f.base_url for i, f in enumerate(fakes)}, runs, fresh=False)
    finally:
        for f in fakes:
            f.close()


def bench_c(home: Path, runs: int) -> list[Run]:
    models = [{"id": f"vendor{i % 40}/model-{i}", "context": 131072, "output": 8192, "tools": True}
              for i in range(5000)]
    with FakeProvider("openai", models, variant="openrouter") as fake:
        return case(home, {"gateway": fake.base_url}, runs, fresh=True)


CASES: list[tuple[str, str, float, Callable[[Path, int], list[Run]]]] = [
    ("a", "1 local provider, no change", 0.3, bench_a),
    ("b", "30 providers @ 300 ms", 1.2, bench_b),
    ("c", "5,000 models, fresh block", 2.0, bench_c),
]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", choices=[c[0] for c in CASES])
    parser.add_argument("--quick", action="store_true", help="one run per case (smoke)")
    parser.add_argument("--json", action="store_true",
                        help="print rows {figure, target, measured, unit, verdict} for bench/run_all.py")
    args = parser.parse_args()
    runs_per_case = 1 if args.quick else args.runs
    rows: list[dict[str, object]] = []
    lines = [f"syncd once, median of {runs_per_case} runs "
             f"(python {sys.version.split()[0]}, {os.cpu_count()} cpus)",
             f"{'case':<34} {'target':>7} {'median':>8} {'min':>7} {'max':>7} {'peak RSS':>9}  ok"]
    over = False
    for key, label, target, fn in CASES:
        if args.only and key != args.only:
            continue
        with tempfile.TemporaryDirectory(prefix="syncd-bench-") as tmp:
            runs = fn(Path(tmp), runs_per_case)
        secs = [r.seconds for r in runs]
        med = statistics.median(secs)
        rss = max(r.max_rss_kb for r in runs) / 1024
        ok = med <= target and all(r.code == 0 for r in runs)
        over |= not ok
        lines.append(f"{key}) {label:<31} {target:>6.2f}s {med:>7.3f}s {min(secs):>6.3f}s "
                     f"{max(secs):>6.3f}s {rss:>7.1f}MB  {'yes' if ok else 'NO'}")
        rows.append({"figure": f"once {key}) {label}: wall time (median)", "target": f"<= {target} s",
                     "measured": round(med, 3), "unit": "s", "verdict": "met" if ok else "missed"})
        rows.append({"figure": f"once {key}) {label}: peak RSS", "target": "",
                     "measured": round(rss, 1), "unit": "MB"})
    print(json.dumps(rows, indent=1) if args.json else "\n".join(lines))
    return 1 if over else 0


if __name__ == "__main__":
    raise SystemExit(main())
