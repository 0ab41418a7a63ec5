"""`syncd undo [FILE] [--list]`: which config to undo, its backups, and what an undo did, as text."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from syncd import paths
from syncd.cli.summary import home, wrapped
from syncd.errors import SyncdError
from syncd.report import plural
from syncd.settings import load_settings
from syncd.sync.backups import Backup, backups_of
from syncd.sync.state import load_state
from syncd.sync.targets import resolve_targets
from syncd.sync.undo import Undone, current_text, line_changes, undo


def _known_targets() -> list[Path]:
    """Every config syncd may have written: the state's targets and overlays, and today's targets."""
    state = load_state()
    found = [Path(k) for k in state.targets]
    found += [Path(ts.overlay) for ts in state.targets.values() if ts.overlay]
    found += resolve_targets(None, load_settings().configs)
    return list({os.path.realpath(p): p for p in found}.values())


def _chosen(file: str | None) -> list[Path]:
    return [Path(file).expanduser()] if file else _known_targets()


def _when(b: Backup) -> str:
    return b.taken.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def list_backups(file: str | None) -> str:
    """`syncd undo --list`: per config, its backups newest first, each against the text now."""
    state_dir = paths.state_dir()
    out: list[str] = []
    for target in _chosen(file):
        found = backups_of(target, state_dir)
        if not found:
            continue
        now = current_text(target)
        out.append(home(str(target)))
        for i, b in enumerate(found):
            try:
                added, removed = line_changes(now, b.path.read_text(encoding="utf-8"))
                delta = f"+{added} -{removed} lines against now"
            except (OSError, UnicodeDecodeError):
                delta = "unreadable"
            mark = "   <- `syncd undo` restores this one" if i == 0 else ""
            out.append(f"  {_when(b)}  {plural(b.size, 'byte'):>12}  {delta}{mark}")
    if not out:
        where = f" of {file}" if file else ""
        return (f"no backups{where} yet: syncd keeps the previous text of a config before each "
                "write it makes\n")
    return "\n".join(out) + "\n"


def _latest(targets: list[Path]) -> Path:
    state_dir = paths.state_dir()
    dated = [(found[0].taken, t) for t in targets if (found := backups_of(t, state_dir))]
    if not dated:
        raise SyncdError("nothing to undo: syncd has not written any config yet (it keeps the "
                         "previous text before each write)")
    return max(dated, key=lambda pair: pair[0])[1]


def run_undo(file: str | None) -> str:
    """`syncd undo [FILE]`: restore the latest backup of FILE, or of the config written last."""
    target = _chosen(file)[0] if file else _latest(_known_targets())
    done = undo(target, load_settings(), paths.state_dir(), lambda: datetime.now(UTC))
    return describe(done)


def describe(u: Undone) -> str:
    added, removed = u.lines
    out = [f"restored {home(str(u.target))} to its backup of {_when(u.backup)} "
           f"(+{added} -{removed} lines)",
           "  the text it replaced is backed up too: `syncd undo` again puts it back",
           "  restart OpenCode to see the change"]
    for p in u.report.providers:
        if p.tombstoned:
            out += wrapped(f"{p.id}: syncd will not add back {plural(len(p.tombstoned), 'model')} "
                           f"the restored text lacks ({', '.join(p.tombstoned)}); `syncd restore "
                           f"{p.id}/MODEL` lets it add one again")
    return "\n".join(out) + "\n"
