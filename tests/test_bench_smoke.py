"""Smoke test: the benchmarks still run in quick mode and bench/run_all.py collects their rows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import run_all  # noqa: E402
from _common import Row, markdown  # noqa: E402

QUICK = ("jsonc_bench", "fetch_bench", "peers")
PEER_FIGURES = ("comments kept", "hand edits kept", "embedding models written",
                "entries for 2 Ollama tags", "keyed gateway reached", "hung server",
                "server answers `[]`", "runs until a stale model is removed", "wall time",
                "peak RSS")


@pytest.fixture(scope="module")
def quick_rows() -> list[dict[str, Any]]:
    out = subprocess.run([sys.executable, str(BENCH / "run_all.py"), "--quick", "--json",
                          "--only", *QUICK], capture_output=True, text=True, timeout=150)
    assert out.returncode == 0, out.stderr
    rows: list[dict[str, Any]] = json.loads(out.stdout)
    return rows


def test_every_quick_bench_contributes_rows(quick_rows: list[dict[str, Any]]) -> None:
    assert {r["bench"] for r in quick_rows} == set(QUICK)


def test_numeric_benches_report_numbers(quick_rows: list[dict[str, Any]]) -> None:
    numeric = [r for r in quick_rows if r["bench"] in ("jsonc_bench", "fetch_bench")]
    assert numeric
    assert all(isinstance(r["measured"], int | float) and r["measured"] > 0 for r in numeric)


def test_peer_table_has_every_row_of_the_issue(quick_rows: list[dict[str, Any]]) -> None:
    figures = [r["figure"] for r in quick_rows if r["bench"] == "peers"]
    missing = [f for f in PEER_FIGURES if not any(g.startswith(f) for g in figures)]
    assert not missing


def test_syncd_keeps_every_comment_and_hand_edit(quick_rows: list[dict[str, Any]]) -> None:
    peers = {r["figure"]: r for r in quick_rows if r["bench"] == "peers"}
    assert peers["comments kept (of 8)"]["measured"] == 8
    assert peers["hand edits kept (of 5)"]["measured"] == 5
    assert peers["embedding models written (of 2 served)"]["measured"] == 0


def test_ratio_is_syncd_over_peer_when_both_measured(quick_rows: list[dict[str, Any]]) -> None:
    both = [r for r in quick_rows if isinstance(r["measured"], int | float)
            and isinstance(r["peer"], int | float) and r["peer"]]
    for r in both:
        assert r["ratio"] == pytest.approx(r["measured"] / r["peer"])


def test_printed_lines_are_parsed_when_a_bench_has_no_json() -> None:
    text = ("providers: 30\n"
            "  b) 30 slow providers      median 0.84 s   (target <= 1.2 s)\n"
            "fetch_many (concurrent): 412 ms  = 1.10x the slowest (target <= 1.5x)\n")
    rows = run_all.parse_text("x", text)
    assert [(r.figure, r.measured, r.unit) for r in rows] == [("fetch_many (concurrent)", 412.0, "ms")]
    assert rows[0].target == "<= 1.5x"


def test_markdown_table_has_a_line_per_row_and_escapes_pipes() -> None:
    rows = [Row("a | b", "1", 2.0, "ms", 0.5, 4.0, "win"), Row("c", "", "text")]
    lines = markdown(rows).splitlines()
    assert len(lines) == 2 + len(rows)
    assert "a \\| b" in lines[2]
    assert lines[2].count(" | ") == lines[0].count(" | ")
