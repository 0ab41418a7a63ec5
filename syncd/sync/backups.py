"""Backups of targets in the state dir: the old bytes before each write, the last N kept per target."""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from syncd.sync.atomic import TEMP_MARK, atomic_write_bytes
from syncd.sync.locks import private_dir

BACKUPS_DIR = "backups"
_STAMP = "%Y%m%dT%H%M%S.%fZ"  # backup names: the time of the write they precede, sortable


@dataclass(frozen=True, slots=True)
class Backup:
    """One backup: the text a target held before one of syncd's writes."""

    path: Path
    taken: datetime  # when syncd replaced that text
    size: int


def backup_dir_for(real_path: Path, state_dir: Path) -> Path:
    digest = hashlib.sha256(str(real_path).encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return state_dir / BACKUPS_DIR / f"{real_path.stem}-{digest}"


def backup(real: Path, data: bytes, state_dir: Path) -> Path:
    """Keep `data` (bytes of the target at `real`) as its newest backup; OSError on failure."""
    directory = private_dir(backup_dir_for(real, state_dir))
    ext = real.suffix.lstrip(".") or "bak"
    # Names sort in time order (rotation relies on it): on a clash, step one microsecond on.
    stamp = datetime.now(UTC)
    while True:
        target = directory / f"{stamp:{_STAMP}}.{ext}"
        if not target.exists():
            break
        stamp += timedelta(microseconds=1)
    atomic_write_bytes(target, data, mode=0o600)
    return target


def rotate(directory: Path, keep: int) -> None:
    """Keep the newest `keep` backups in `directory`; call it holding the target's lock."""
    entries = list(directory.iterdir())
    for entry in entries:
        # Temp files of a backup cut short by a kill; we hold the target's lock, so none is live.
        if entry.name.startswith(".") and TEMP_MARK in entry.name:
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
    files = sorted(p for p in entries if not p.name.startswith(".") and p.is_file())
    for old in files[: max(len(files) - keep, 0)]:
        with contextlib.suppress(FileNotFoundError):
            old.unlink()


def backups_of(target: Path, state_dir: Path) -> list[Backup]:
    """The backups of `target` (through its symlinks), newest first."""
    folder = backup_dir_for(Path(target).resolve(), state_dir)
    try:
        entries = list(folder.iterdir())
    except OSError:
        return []
    out: list[Backup] = []
    for entry in entries:
        if entry.name.startswith("."):
            continue  # a backup cut short by a kill
        try:
            taken = datetime.strptime(entry.name.rsplit(".", 1)[0], _STAMP).replace(tzinfo=UTC)
            size = entry.stat().st_size
        except (ValueError, OSError):
            continue
        out.append(Backup(entry, taken, size))
    return sorted(out, key=lambda b: b.taken, reverse=True)
