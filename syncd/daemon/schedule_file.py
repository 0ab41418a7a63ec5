"""The daemon's published schedule (`daemon.json` in the state dir): when each provider runs next."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from syncd.localfile import DATA_LIMIT, read_bytes
from syncd.sync.records import target_key
from syncd.sync.store import atomic_write_bytes

NAME = "daemon.json"

NextRuns = dict[str, dict[str, str]]  # target key -> provider id -> ISO time


def publish(state_dir: Path, next_runs: Mapping[tuple[Path, str], datetime | None]) -> None:
    """Write the schedule for `syncd status`; a failure only costs status its next-run column."""
    doc: NextRuns = {}
    for (target, pid), when in next_runs.items():
        if when is not None:
            doc.setdefault(target_key(target), {})[pid] = when.isoformat()
    data = json.dumps({"pid": os.getpid(), "next_runs": doc}).encode()
    with contextlib.suppress(OSError):
        atomic_write_bytes(state_dir / NAME, data, mode=0o600)


def withdraw(state_dir: Path) -> None:
    """The daemon stopped: no schedule to show."""
    with contextlib.suppress(OSError):
        (state_dir / NAME).unlink()


def read(state_dir: Path) -> NextRuns:
    """The running daemon's schedule; empty when no daemon runs (its file outlives a crash)."""
    try:
        doc = json.loads(read_bytes(state_dir / NAME, DATA_LIMIT))
        pid = int(doc["pid"])
        os.kill(pid, 0)  # the daemon that wrote it is still alive
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return {}
    runs = doc.get("next_runs")
    if not isinstance(runs, dict):
        return {}
    return {t: {p: w for p, w in v.items() if isinstance(w, str)}
            for t, v in runs.items() if isinstance(t, str) and isinstance(v, dict)}
