"""Crash-safe file primitives: fsynced temp files beside a file, atomic replace, folder fsync."""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from pathlib import Path

TEMP_MARK = ".syncd-"
TEMP_SUFFIX = ".tmp"


def real_path(path: Path) -> Path:
    return Path(os.path.realpath(path))


def fsync_dir(directory: Path) -> None:
    """fsync a folder after a rename in it, quietly where the file system refuses.

    The rename has already happened; failing here would report a write that did happen as one
    that did not.
    """
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def temp_prefix(name: str) -> str:
    """How every temp file of `name` starts (the rest is random, then an optional tag)."""
    return f".{name}{TEMP_MARK}"


def is_temp_of(entry: str, name: str) -> bool:
    return entry.startswith(temp_prefix(name)) and entry.endswith(TEMP_SUFFIX)


STALE_AFTER = 300.0  # seconds: no atomic write of syncd's takes this long


def sweep_stale_temps(directory: Path, *, now: float | None = None) -> int:
    """Remove the temp files of syncd's own atomic writes (state, caches, backups) that a killed
    writer left anywhere under `directory`, once older than STALE_AFTER: a younger one may be a
    write in flight in another syncd. Not for targets' folders, whose temp files may hold a
    displaced save (store.clean_stale_temps puts those back). Returns how many went."""
    now = time.time() if now is None else now
    try:
        entries = list(directory.rglob(f".*{TEMP_MARK}*{TEMP_SUFFIX}"))
    except OSError:
        return 0
    removed = 0
    for entry in entries:
        with contextlib.suppress(OSError):
            if now - entry.lstat().st_mtime > STALE_AFTER and entry.is_file():
                entry.unlink()
                removed += 1
    return removed


def write_temp(
    directory: Path, name: str, data: bytes, mode: int, owner: os.stat_result | None,
    tag: str = "",
) -> Path:
    """Write `data` to a fresh temp file for `name` in `directory`, fsync it; on any error remove it.

    `mode` is set exactly (whatever the umask); `owner` (uid, gid) is kept when we may.
    """
    tmp = directory / f"{temp_prefix(name)}{secrets.token_hex(6)}{tag}{TEMP_SUFFIX}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        try:
            os.fchmod(fd, mode)  # fchmod ignores the umask: the copy gets exactly the old mode
            if owner is not None and (owner.st_uid, owner.st_gid) != (os.geteuid(), os.getegid()):
                # Root (or a group member) writing someone's file keeps its owner; when we
                # may not, the file still gets written, owned by us.
                with contextlib.suppress(OSError):
                    os.fchown(fd, owner.st_uid, owner.st_gid)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


def atomic_write_bytes(path: Path, data: bytes, *, mode: int) -> None:
    """Replace `path` (its real path) by `data`: temp beside it, fsync, replace, fsync the folder.

    For syncd's own files, which nobody else writes. Raises OSError (callers translate it into
    their error kind); the temp file never outlives a failure.
    """
    real = real_path(path)
    tmp = write_temp(real.parent, real.name, data, mode, None)
    try:
        os.replace(tmp, real)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(real.parent)
