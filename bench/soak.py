"""Soak: the reliability matrix at a larger scale (more kills, more racing edits, more seeds); prints numbers.

    .venv/bin/python bench/soak.py --iterations 2000 --seeds 3

Runs tests/test_reliability_{crash,races,faults,secrets,fuzz,scale}.py in a pytest subprocess per seed
with SYNCD_RELIABILITY_KILLS=iterations, SYNCD_RELIABILITY_EDITS=1.5*iterations and
SYNCD_RELIABILITY_SEED=seed, then prints the numbers each test reports and the wall time.
Exit status: 0 when every seed passed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ["crash", "races", "faults", "secrets", "fuzz", "scale"]
REPORT = re.compile(r"(?:\d+ kills|\d+ edits|tasks/fds|syncd once on|scale:)[^\n]*")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=1000, help="SIGKILLs per seed (default 1000)")
    parser.add_argument("--seeds", type=int, default=1, help="how many seeds to run (default 1)")
    parser.add_argument("--only", choices=TESTS, action="append", help="run only these parts")
    parser.add_argument("--json", action="store_true",
                        help="print rows {figure, target, measured, unit, ratio} for run_all.py")
    parser.add_argument("--quick", action="store_true", help="the CI-sized matrix (200 kills)")
    args = parser.parse_args()
    if args.quick:
        args.iterations = 200
    parts = args.only or TESTS
    files = [str(ROOT / "tests" / f"test_reliability_{p}.py") for p in parts]
    failed = 0
    rows: list[dict[str, object]] = []
    for seed in range(1, args.seeds + 1):
        env = {**os.environ, "SYNCD_RELIABILITY_KILLS": str(args.iterations),
               "SYNCD_RELIABILITY_EDITS": str(int(args.iterations * 1.5)),
               "SYNCD_RELIABILITY_SEED": str(seed)}
        started = time.monotonic()
        out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
                              *files], cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.monotonic() - started
        status = "ok" if out.returncode == 0 else f"FAILED (pytest exit {out.returncode})"
        if out.returncode != 0:
            failed += 1
        if args.json:
            rows += _rows(seed, args.iterations, status, wall, out.stdout)
            continue
        print(f"seed {seed}: {status} in {wall:.1f} s")
        for line in REPORT.findall(out.stdout):
            print(f"  {line}")
        if out.returncode != 0:
            print(out.stdout[-4000:])
    if args.json:
        print(json.dumps(rows, indent=1))
    return 1 if failed else 0


SCALE = re.compile(r"scale: (\d+) providers \+ (\d+) models: first once ([\d.]+) s, "
                   r"second ([\d.]+) s, peak RSS (\d+) MB")


def _rows(seed: int, kills: int, status: str, wall: float, stdout: str) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = [{
        "figure": f"reliability matrix, seed {seed} ({kills} SIGKILLs, {int(kills * 1.5)} racing edits)",
        "target": "all pass", "measured": status, "unit": f"in {wall:.0f} s", "ratio": None}]
    scale = SCALE.search(stdout)
    if scale:
        providers, models, first, second, rss = scale.groups()
        what = f"once, {providers} providers + a {int(models):,}-model gateway"
        rows += [
            {"figure": f"{what}: first run", "target": "completes", "measured": float(first),
             "unit": "s", "ratio": None},
            {"figure": f"{what}: second run", "target": "—", "measured": float(second),
             "unit": "s", "ratio": None},
            {"figure": f"{what}: peak RSS", "target": "bounded", "measured": int(rss),
             "unit": "MB", "ratio": None},
        ]
    return rows


if __name__ == "__main__":
    sys.exit(main())
