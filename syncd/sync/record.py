"""Writing one target and recording what the write means in the state file, under the target lock."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import structlog

from syncd.errors import FetchError
from syncd.sync.cycle import Planner
from syncd.sync.locks import target_lock
from syncd.sync.records import State
from syncd.sync.stale import Judgement, describe
from syncd.sync.state import load_state, save_state, state_file
from syncd.sync.store import WriteResult, sha256_bytes, write_target

log = structlog.get_logger("syncd.sync")


def write_planned(
    target: Path, planner: Planner, *, state_dir: Path, clock: Callable[[], float],
    file: Path | None = None, abort: threading.Event | None = None,
) -> WriteResult:
    """Patch `file` (default: `target`; else the overlay that holds the target's models) with
    `planner`'s plan for the text on disk; record the outcome in the state."""
    written = file or target

    def marked(text: str) -> str | None:
        new_text = planner(text)
        if new_text is not None and new_text != text:
            mark_pending(target, text, new_text, planner, state_dir)
        return new_text

    return write_target(
        written, marked, state_dir=state_dir, abort=abort,
        after=lambda result: record(target, planner, result, state_dir, clock(), written),
    )


def mark_pending(target: Path, old_text: str, new_text: str, planner: Planner, state_dir: Path) -> None:
    """Record what this write will mean before it lands (see `State.settled`)."""
    with target_lock(state_file(), state_dir):
        state = _base(target, old_text, planner)
        pending = {pid: plan.state for pid, plan in planner.plans.items()}
        save_state(state.with_pending(target, sha256_bytes(new_text.encode("utf-8")), pending,
                                      planner.write))


def record(target: Path, planner: Planner, result: WriteResult, state_dir: Path, at: float,
           written: Path | None = None) -> None:
    """Save what this cycle learned; runs under the target lock, and takes the state lock."""
    now = datetime.fromtimestamp(at, UTC)
    with target_lock(state_file(), state_dir):
        # drops this cycle's own pending record (its plans follow) and settles a killed one's
        state = _base(target, result.old_text, planner)
        for f in planner.fetched:
            plan = planner.plans.get(f.pid)
            ps = plan.state if plan is not None else state.provider(target, f.pid)
            if isinstance(f.result, FetchError):
                ps = ps.failed(f.result.reason, f.result.label, now)
            elif plan is not None and plan.error is not None:
                ps = ps.failed(plan.error, "config", now)
            else:
                ps = ps.succeeded(now)
            state = state.with_provider(target, f.pid, ps)
        if result.changed:  # keyed by the file written: the watcher skips syncd's own writes by it
            state = state.with_write(written or target, result.sha256, now, planner.write)
        save_state(state)


def _base(target: Path, text: str, planner: Planner) -> State:
    """The state file now, as `planner` planned from `text`; call it holding the state lock."""
    based, rolled_back = planner.base(load_state(), text)
    if rolled_back and planner.judged is not None:
        log_undone(target, planner.judged)
    return based


def log_undone(target: Path, judged: Judgement) -> None:
    """The one line that says why models the file lost are coming back instead of tombstoned."""
    log.warning("a save undid syncd's last write(s), so it came from a buffer read before "
                "them: syncd's changes are made again and nothing counts as deleted by hand "
                "(to delete these models, delete them again)",
                target=str(target), models=list(describe(judged)))
