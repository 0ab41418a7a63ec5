"""Shared helpers for bench scripts: result rows, machine line, Markdown tables, child runs with peak RSS."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Row:
    """One figure of a benchmark: `measured` is syncd's value, `peer` the closest peer's, if any."""

    figure: str
    target: str
    measured: Any
    unit: str = ""
    ratio: float | None = None  # syncd / peer, measured in the same run
    peer: Any = None
    verdict: str = ""  # "win" | "tie" | "loss" | "met" | "missed" | "" (no target), with a reason after ":"
    note: str = ""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def rows_from_json(items: Iterable[Mapping[str, Any]]) -> list[Row]:
    """Rows back from another script's `--json` output (unknown keys dropped, missing ones defaulted)."""
    fields = set(Row.__dataclass_fields__)
    return [Row(**{k: v for k, v in item.items() if k in fields}) for item in items]


def emit(rows: Sequence[Row], as_json: bool, title: str = "") -> None:
    """Print rows as a JSON list (for run_all) or as a Markdown table."""
    if as_json:
        print(json.dumps([r.as_json() for r in rows], indent=1))
        return
    if title:
        print(f"### {title}\n")
    print(markdown(rows))


def fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        text = f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    else:
        text = str(value)
    return f"{text} {unit}".strip() if unit and isinstance(value, int | float) else text


def markdown(rows: Sequence[Row], with_peer: bool | None = None) -> str:
    """A Markdown table; peer columns appear only when some row has a peer value or ratio."""
    if with_peer is None:
        with_peer = any(r.peer is not None or r.ratio is not None for r in rows)
    head = ["figure", "target", "syncd (measured)"]
    if with_peer:
        head += ["peer", "ratio syncd/peer"]
    head += ["verdict"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r.figure, r.target or "—", fmt(r.measured, r.unit)]
        if with_peer:
            cells += [fmt(r.peer, r.unit), f"{r.ratio:.2f}" if r.ratio is not None else "—"]
        cells += [" ".join(x for x in (r.verdict, f"({r.note})" if r.note else "") if x) or "—"]
        lines.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    return "\n".join(lines)


def machine_line() -> str:
    """`uname -srm`, CPU model, core count and Python version, for the header of every table."""
    u = os.uname()
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor() or cpu
    return (f"{u.sysname} {u.release} {u.machine}; {cpu}; {os.cpu_count()} cores; "
            f"Python {platform.python_version()}")


@dataclass(frozen=True)
class Run:
    """One finished child process: exit code (None when killed at the deadline), wall time, peak RSS."""

    rc: int | None
    wall: float  # seconds
    rss_kb: int  # peak resident set size of the child (ru_maxrss)
    stdout: str
    stderr: str


def run_measured(argv: Sequence[str], env: Mapping[str, str], timeout: float,
                 cwd: str | None = None) -> Run:
    """Run a child, measure wall time and its peak RSS, kill its group at `timeout` (rc None).

    Peak RSS comes from GNU time when present: Linux charges a child forked from this (large)
    process with this process's high-water mark, so wait4's ru_maxrss would read ~30 MB for any
    child; `time` is small, so what it reports is the tool's own peak.
    """
    base = Path(env.get("HOME", "/tmp")) / f".bench-{time.monotonic_ns()}"
    gnu_time = Path("/usr/bin/time")
    wrapped = list(argv)
    if gnu_time.exists():
        wrapped = [str(gnu_time), "-f", "%M", "-o", f"{base}.rss", *wrapped]
    with open(f"{base}.out", "w+b") as out, open(f"{base}.err", "w+b") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(wrapped, env=dict(env), stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL, cwd=cwd, start_new_session=True)
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not wait again
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    rss = usage.ru_maxrss
    with contextlib.suppress(OSError, ValueError, IndexError):
        rss = int(Path(f"{base}.rss").read_text().split()[-1])
    for suffix in (".out", ".err", ".rss"):
        Path(f"{base}{suffix}").unlink(missing_ok=True)
    return Run(None if killed.is_set() else proc.returncode, wall, rss, stdout, stderr)


def isolated_env(root: Path) -> dict[str, str]:
    """A minimal environment whose HOME, XDG dirs and syncd paths all live under `root`."""
    return {"PATH": "/usr/bin:/bin", "HOME": str(root), "LANG": "C.UTF-8",
            "XDG_CONFIG_HOME": str(root / ".config"), "XDG_DATA_HOME": str(root / ".local/share"),
            "XDG_STATE_HOME": str(root / ".local/state"), "XDG_CACHE_HOME": str(root / ".cache"),
            "SYNCD_CONFIG": str(root / "syncd.json5"), "SYNCD_STATE_DIR": str(root / "state")}


def versus(figure: str, target: str, s: Any, p: Any, have_peer: bool, better: str | None = None,
           unit: str = "", note: str = "", tol: float = 0.05, tol_abs: float = 0.0) -> Row:
    """A row comparing syncd's value `s` with the peer's `p`. Numbers: `better` is "high" or "low",
    equal within max(tol relative, tol_abs). Text: each value is (text, ok); the oks decide."""
    ratio = s / p if isinstance(s, int | float) and isinstance(p, int | float) and p else None
    if not have_peer:
        verdict = ""
    elif isinstance(s, tuple):
        (s, s_ok), (p, p_ok) = s, p
        verdict = "tie" if s_ok == p_ok else "win" if s_ok else "loss"
    elif better is None:
        verdict = "tie" if s == p else "differs"
    else:
        lo, hi = (s, p) if better == "low" else (p, s)
        slack = max(hi * tol, tol_abs)
        verdict = "win" if lo < hi - slack else "tie" if lo <= hi + slack else "loss"
    return Row(figure, target, s, unit, ratio, p, verdict, note)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def add_tests_to_path() -> None:
    """Make `tests.fakes` importable (FakeProvider) from a bench script run by path."""
    for p in (str(REPO), str(REPO / "tests")):
        if p not in sys.path:
            sys.path.insert(0, p)
