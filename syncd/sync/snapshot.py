"""A target as read: bytes, strict UTF-8 text, hash, mode, hard links, and whether it may be replaced."""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from syncd.errors import TargetError
from syncd.localfile import CONFIG_LIMIT, UnsafeFile, read_regular
from syncd.sync.atomic import real_path


@dataclass(frozen=True)
class Snapshot:
    """A target as read: `text` is strict UTF-8 with any BOM kept (the JSONC engine keeps it)."""

    path: Path
    real_path: Path
    data: bytes
    text: str
    sha256: str
    mode: int  # permission bits; 0 when the file does not exist
    exists: bool
    links: int = 1  # hard links to the file


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def reason(exc: OSError) -> str:
    """An OS error as a lower-case phrase for one-line messages."""
    return (exc.strerror or str(exc)).lower() if exc.errno else str(exc)


def read_target(path: Path) -> Snapshot:
    """Read a target through its symlinks; a missing file is a Snapshot with `exists=False`."""
    real = real_path(path)
    try:
        data, st = read_regular(real, CONFIG_LIMIT)  # a named pipe or /dev/zero: refused, not read
    except FileNotFoundError:
        return Snapshot(path, real, b"", "", sha256_bytes(b""), 0, False)
    except UnsafeFile as exc:
        raise TargetError(str(path), f"{exc.strerror}; syncd only edits regular files") from None
    except OSError as exc:
        raise TargetError(str(path), f"cannot read it: {reason(exc)}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TargetError(
            str(path), f"is not UTF-8 text (bad byte at offset {exc.start}); syncd only edits UTF-8"
        ) from None
    return Snapshot(path, real, data, text, sha256_bytes(data), stat.S_IMODE(st.st_mode), True,
                    st.st_nlink)


def read_bytes_or_none(real: Path) -> bytes | None:
    """The file's bytes, None when it does not exist."""
    try:
        return real.read_bytes()
    except FileNotFoundError:
        return None


def read_only_reason(snap: Snapshot) -> str | None:
    """Why the target cannot be replaced, judged from permission bits too: root ignores them,
    but a file chmod 0444 (or a home-manager link into /nix/store) means "leave me alone" to
    root as well."""
    real = snap.real_path
    if snap.exists and (not snap.mode & stat.S_IWUSR or not _may_write(real)):
        return f"{real} has mode {snap.mode:04o}"
    directory = real.parent
    try:
        dir_mode = stat.S_IMODE(directory.stat().st_mode)
    except FileNotFoundError:
        return None  # reported as a missing folder when the temp file cannot be created
    if not dir_mode & stat.S_IWUSR or not os.access(directory, os.W_OK | os.X_OK):
        return f"its folder {directory} is not writable (mode {dir_mode:04o})"
    return None


def _may_write(real: Path) -> bool:
    """os.access says no to a file that is gone too: one an editor has just renamed away to save
    vim-style (file~, then a new file) was writable; its folder decides."""
    return os.access(real, os.W_OK) or not os.path.lexists(real)


def unwritable_reason(path: Path) -> str | None:
    """Why syncd could not replace `path` (a read-only file or folder, a link into a read-only
    tree such as the Nix store), or None when it could; a missing file is judged by its folder."""
    real = real_path(path)
    try:
        mode, exists = stat.S_IMODE(os.stat(real).st_mode), True
    except FileNotFoundError:
        mode, exists = 0, False
    except OSError as exc:
        raise TargetError(str(path), f"cannot read it: {reason(exc)}") from None
    return read_only_reason(Snapshot(path, real, b"", "", "", mode, exists))
