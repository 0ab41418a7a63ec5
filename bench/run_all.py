"""Run every benchmark in bench/ and print one Markdown table: figure, target, measured, ratio to the peer.

Usage: bench/run_all.py [--quick] [--json] [--only NAME ...]

Each bench script is asked for `--json` (rows {figure, target, measured, unit, ratio}) when its
--help offers it, else its printed lines are parsed; `--quick` is passed on where offered, and a
script without a quick mode is skipped under --quick (so the smoke test stays short).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Row, fmt, machine_line, rows_from_json  # noqa: E402

BENCH = Path(__file__).resolve().parent
# The benchmarks of the earlier issues first, then this peer comparison.
ORDER = ("jsonc_bench.py", "fetch_bench.py", "once_bench.py", "startup_bench.py", "daemon_bench.py",
         "store_bench.py", "soak.py", "daemon_soak.py", "peers.py", "hostile_bench.py")
LINE = re.compile(r"^\s*(?P<fig>[^:=]{3,80}?)\s*:\s*(?P<val>-?\d[\d,]*(?:\.\d+)?)\s*(?P<unit>[a-zA-Z%]*)"
                  r"(?P<rest>.*)$")
TARGET = re.compile(r"target\s*(?P<tgt>[<>≤≥=]*\s*[\d.,]+\s*[a-zA-Z%]*)", re.I)


def scripts(only: Sequence[str]) -> list[Path]:
    found = sorted(p for p in BENCH.glob("*.py") if not p.name.startswith("_") and p.name != "run_all.py")
    ranked = sorted(found, key=lambda p: ORDER.index(p.name) if p.name in ORDER else len(ORDER))
    return [p for p in ranked if not only or p.stem in only or p.name in only]


def flags_of(script: Path) -> set[str]:
    if "argparse" not in script.read_text():
        return set()  # without a parser, --help would run the whole bench
    try:
        out = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True,
                             timeout=30)
    except subprocess.TimeoutExpired:
        return set()
    if out.returncode != 0:
        return set()
    return set(re.findall(r"--[a-z][a-z-]*", out.stdout))


def parse_text(bench: str, text: str) -> list[Row]:
    """Rows from a script's own printed lines: `label: number unit ... (target ...)`."""
    lines = [ln for ln in text.splitlines() if LINE.match(ln)]
    if any("target" in ln.lower() for ln in lines):
        lines = [ln for ln in lines if "target" in ln.lower()]
    rows = []
    for ln in lines:
        m = LINE.match(ln)
        assert m is not None
        t = TARGET.search(m["rest"])
        value = float(m["val"].replace(",", ""))
        rows.append(Row(m["fig"].strip(), t["tgt"].strip() if t else "", value, m["unit"],
                        note="parsed from printed output"))
    return rows


def run_bench(script: Path, quick: bool, timeout: float) -> tuple[list[Row], str]:
    """The rows of one bench and a status line (exit code, seconds)."""
    flags = flags_of(script)
    if quick and "--quick" not in flags:
        return [], "skipped under --quick (no --quick mode)"
    argv = [sys.executable, str(script)]
    argv += ["--json"] if "--json" in flags else []
    argv += ["--quick"] if quick else []
    started = time.perf_counter()
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return [], f"timed out after {timeout:.0f} s"
    status = f"exit {out.returncode}, {time.perf_counter() - started:.0f} s"
    rows: list[Row] = []
    if "--json" in flags:
        start = out.stdout.find("[")
        try:
            rows = rows_from_json(json.loads(out.stdout[start:])) if start >= 0 else []
        except (json.JSONDecodeError, TypeError):
            rows = parse_text(script.stem, out.stdout)
    else:
        rows = parse_text(script.stem, out.stdout)
    if out.returncode != 0 and not rows:
        tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
        status += f": {tail[:160]}"
    return rows, status


def table(results: list[tuple[str, list[Row], str]]) -> str:
    head = "| bench | figure | target | measured (syncd) | peer | ratio syncd/peer | verdict |"
    lines = [head, "|---|---|---|---|---|---|---|"]
    for bench, rows, status in results:
        if not rows:
            lines.append(f"| {bench} | — | — | {status} | — | — | — |")
        for r in rows:
            cells = [bench, r.figure, r.target or "—", fmt(r.measured, r.unit),
                     "—" if r.peer is None else fmt(r.peer, r.unit),
                     f"{r.ratio:.2f}" if isinstance(r.ratio, int | float) else "—",
                     " ".join(x for x in (r.verdict, f"({r.note})" if r.note else "") if x) or "—"]
            lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="each bench's quick mode; skip benches without one")
    ap.add_argument("--json", action="store_true", help="print every row as JSON")
    ap.add_argument("--only", nargs="*", default=[], metavar="NAME", help="only these benches (stem)")
    ap.add_argument("--timeout", type=float, default=None, help="per bench (default 60 s quick, 1800 s)")
    args = ap.parse_args(argv)
    timeout = args.timeout or (60.0 if args.quick else 1800.0)
    results = []
    for script in scripts(args.only):
        print(f"running {script.name} ...", file=sys.stderr, flush=True)
        rows, status = run_bench(script, args.quick, timeout)
        print(f"  {script.name}: {len(rows)} rows, {status}", file=sys.stderr, flush=True)
        results.append((script.stem, rows, status))
    if args.json:
        print(json.dumps([{"bench": b, **r.as_json()} for b, rows, _ in results for r in rows], indent=1))
        return 0
    cmd = "bench/run_all.py" + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    print(f"Machine: {machine_line()}  \nCommand: `.venv/bin/python {cmd}`\n")
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
