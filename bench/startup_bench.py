"""Benchmark: a no-op `syncd once` against Python importing syncd's own dependencies, side by side.

    .venv/bin/python bench/startup_bench.py [--runs 21] [--quick] [--json]

One local provider (a fake Ollama on 127.0.0.1) and nothing to change: the config already lists what
it serves. The runs alternate in one process — once, then the bare imports
(`python -c "import asyncio, httpx, structlog, json5, platformdirs"`), then the same plus the
modules `once` loads (syncd's own imports, nothing run) — so load from other work on the machine
falls on all three alike. The figure is the ratio of the medians (target <= 1.3x); the third
command splits what is left into importing and running.

Every command runs with bytecode caching on, in a cache of this run's own (PYTHONPYCACHEPREFIX),
after one warm-up each: as for an installed syncd, whose .pyc files pip writes. Without it (e.g.
PYTHONDONTWRITEBYTECODE=1 in the environment) syncd's modules would be compiled from source on
every run while the dependencies' came from their caches.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_tests_to_path  # noqa: E402

add_tests_to_path()
from once_bench import config_for, isolated_env  # noqa: E402

from tests.fakes import FakeProvider  # noqa: E402

TARGET = 1.3
BASE = "import asyncio, httpx, structlog, json5, platformdirs"
SYNCD_IMPORTS = (BASE + "; import syncd.cli.main, syncd.cli.oneshot, syncd.cli.summary, "
                        "syncd.providers.kinds.ollama")


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    out = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    took = time.perf_counter() - started
    if out.returncode != 0:
        raise RuntimeError(f"{argv[1:4]} failed ({out.returncode}): {out.stderr.decode()[-400:]}")
    return took


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=21, help="alternations (default 21)")
    ap.add_argument("--quick", action="store_true", help="5 alternations (smoke)")
    ap.add_argument("--json", action="store_true", help="print rows {figure, target, measured, unit, ratio}")
    args = ap.parse_args()
    runs = 5 if args.quick else args.runs
    py = sys.executable
    times: dict[str, list[float]] = {"once": [], "imports": [], "imports + syncd": []}
    with tempfile.TemporaryDirectory(prefix="syncd-startup-") as tmp, FakeProvider("ollama") as fake:
        home = Path(tmp)
        env = isolated_env(home)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(home / "pycache")
        cfg = home / "opencode.json"
        cfg.write_text(config_for({"ollama": fake.base_url}))
        once = [py, "-m", "syncd", "once", "--no-notify", "--config", str(cfg)]
        timed(once, env)  # the first run fills the config: every measured run is a no-op
        before = cfg.read_bytes()
        commands = {"once": once, "imports": [py, "-c", BASE],
                    "imports + syncd": [py, "-c", SYNCD_IMPORTS]}
        for argv in commands.values():  # the warm-up: each command's bytecode cache is filled
            timed(argv, env)
        for _ in range(runs):
            for name, argv in commands.items():
                times[name].append(timed(argv, env))
        assert cfg.read_bytes() == before, "a measured run changed the config: not a no-op"
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["once"] / med["imports"]
    loaded = med["imports + syncd"] / med["imports"]
    rows = [
        {"figure": "once no-op / imports, ratio of medians", "target": f"<= {TARGET}x",
         "measured": round(ratio, 3), "unit": "x", "ratio": round(ratio, 3),
         "verdict": "met" if ratio <= TARGET else "missed",
         "note": f"{runs} alternating runs; once {med['once'] * 1000:.0f} ms, imports "
                 f"{med['imports'] * 1000:.0f} ms"},
        {"figure": "imports + syncd's own imports / imports (once without running anything)",
         "target": "", "measured": round(loaded, 3), "unit": "x", "ratio": round(loaded, 3),
         "note": f"{med['imports + syncd'] * 1000:.0f} ms"},
        {"figure": "once no-op (median)", "target": "", "measured": round(med["once"] * 1000, 1),
         "unit": "ms", "ratio": None},
        {"figure": "imports alone (median)", "target": "", "measured": round(med["imports"] * 1000, 1),
         "unit": "ms", "ratio": None},
    ]
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        for name, values in times.items():
            print(f"{name:<18} median {med[name] * 1000:7.1f} ms   min {min(values) * 1000:7.1f} ms  "
                  f"max {max(values) * 1000:7.1f} ms")
        print(f"ratio once / imports: {ratio:.2f}x (target <= {TARGET}x); "
              f"imports + syncd's imports / imports: {loaded:.2f}x")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
