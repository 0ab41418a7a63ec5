"""`syncd undo`: put the latest backup of a target back through the normal write path, and
record the restored text as the user's edit."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from syncd import jsonc
from syncd.errors import SyncdError
from syncd.report import TargetReport
from syncd.settings import Settings
from syncd.sync.backups import Backup, backups_of
from syncd.sync.records import State
from syncd.sync.revalidate import revalidate
from syncd.sync.state import update_state
from syncd.sync.store import WriteResult, read_target, write_target


@dataclass(frozen=True)
class Undone:
    """What `undo` did: the backup it put back, and what the restored file means to syncd now."""

    target: Path
    backup: Backup
    lines: tuple[int, int]  # lines added and removed against the text it replaced
    report: TargetReport  # the revalidation of the restored text: tombstones per provider


def line_changes(old: str, new: str) -> tuple[int, int]:
    """(added, removed) lines going from `old` to `new`."""
    added = removed = 0
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0):
        if line.startswith("+") and not line.startswith("+++"):
            added += 1
        elif line.startswith("-") and not line.startswith("---"):
            removed += 1
    return added, removed


def _text_of(backup: Backup, target: Path) -> str:
    try:
        text = backup.path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SyncdError(f"{backup.path}: cannot read this backup of {target} ({exc})") from None
    try:
        jsonc.parse(text)
    except jsonc.JsoncError as exc:
        # syncd backs up only text it planned from, which parsed; this one was damaged since
        raise SyncdError(f"{backup.path}:{exc.line}:{exc.col}: this backup of {target} does not "
                         f"parse ({exc.msg}); restoring it would break OpenCode") from None
    return text


def undo(target: Path, settings: Settings, state_dir: Path, clock: Callable[[], datetime]) -> Undone:
    """Put the latest backup of `target` back, through the normal write path (which backs up the
    text it replaces), and record the result as the user's edit (tombstones, taken-over fields)."""
    found = backups_of(target, state_dir)
    if not found:
        raise SyncdError(f"{target}: no backups to restore (syncd keeps the previous text of a "
                         "config before each write it makes; it has not written this one)")
    latest = found[0]
    text = _text_of(latest, target)
    reports: list[TargetReport] = []

    def record(result: WriteResult) -> None:
        if not result.changed:
            return
        # the undo is syncd's last write now (the daemon ignores its own writes), and what it
        # took away counts as deleted by hand, as if the user had reverted the file themselves
        update_state(lambda s: _written(s, target, result.sha256, clock()), state_dir)
        reports.append(revalidate(target, settings, state_dir))

    result = write_target(target, lambda now: None if now == text else text,
                          state_dir=state_dir, after=record)
    if not result.changed:
        raise SyncdError(f"{target} already holds its latest backup (from "
                         f"{latest.taken:%Y-%m-%d %H:%M:%S}); nothing to undo")
    return Undone(target, latest, line_changes(result.old_text, text), reports[0])


def _written(state: State, target: Path, sha256: str, at: datetime) -> State:
    return state.with_write(target, sha256, at)


def current_text(target: Path) -> str:
    """The target's text now ("" when it is gone or unreadable), to compare backups with."""
    try:
        return read_target(target).text
    except SyncdError:
        return ""
