"""Soak: the reliability matrix at a larger scale (more kills, more racing edits, more seeds); prints numbers.

    .venv/bin/python bench/soak.py --iterations 2000 --seeds 3

Runs tests/test_reliability_{crash,races,faults,secrets,fuzz,scale}.py in a pytest subprocess per seed
with SYNCD_RELIABILITY_KILLS=iterations, SYNCD_RELIABILITY_EDITS=1.5*iterations and
SYNCD_RELIABILITY_SEED=seed, then prints the numbers each test reports and the wall time.
Exit status: 0 when every seed passed.
"""

from __future__ import annotations

import argparse
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
    args = parser.parse_args()
    parts = args.only or TESTS
    files = [str(ROOT / "tests" / f"test_reliability_{p}.py") for p in parts]
    failed = 0
    for seed in range(1, args.seeds + 1):
        env = {**os.environ, "SYNCD_RELIABILITY_KILLS": str(args.iterations),
               "SYNCD_RELIABILITY_EDITS": str(int(args.iterations * 1.5)),
               "SYNCD_RELIABILITY_SEED": str(seed)}
        started = time.monotonic()
        out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
                              *files], cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.monotonic() - started
        status = "ok" if out.returncode == 0 else f"FAILED (pytest exit {out.returncode})"
        print(f"seed {seed}: {status} in {wall:.1f} s")
        for line in REPORT.findall(out.stdout):
            print(f"  {line}")
        if out.returncode != 0:
            failed += 1
            print(out.stdout[-4000:])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
