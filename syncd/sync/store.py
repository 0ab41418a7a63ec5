"""The only module that writes user files: locked, compare-and-swap, backed-up, atomic replaces.

Writing a target (DESIGN §4.5, JSONC-NOTES §S8):
  lock (per real path, across processes) → read → transform → nothing to do? stop, touch nothing
  → back up the old bytes → temp file beside the REAL file (same mode, fsync) → re-read: changed
  since the read? drop the temp and recompute (bounded) → os.replace onto the real path → fsync
  the folder.
Symlinks are resolved first so a stow/chezmoi/home-manager link stays a link. New targets get
mode 0644, like the files OpenCode creates. A window of a few microseconds remains between the
re-read and the replace in which an editor's save would be overwritten (it is still in the
backup); POSIX offers no compare-and-replace to close it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import stat
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from syncd.errors import TargetError
from syncd.sync.locks import private_dir, target_lock

NEW_TARGET_MODE = 0o644
BACKUPS_DIR = "backups"
_TEMP_MARK = ".syncd-"
_TEMP_SUFFIX = ".tmp"
_READ_ONLY_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS}


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


@dataclass(frozen=True)
class WriteResult:
    changed: bool
    sha256: str  # of what is on disk now: the watcher ignores this hash (syncd's own write)
    old_text: str
    new_text: str
    backup: Path | None
    attempts: int


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _reason(exc: OSError) -> str:
    return (exc.strerror or str(exc)).lower() if exc.errno else str(exc)


def read_target(path: Path) -> Snapshot:
    """Read a target through its symlinks; a missing file is a Snapshot with `exists=False`."""
    real = _real(path)
    try:
        with open(real, "rb") as f:
            data = f.read()
            mode = stat.S_IMODE(os.fstat(f.fileno()).st_mode)
    except FileNotFoundError:
        return Snapshot(path, real, b"", "", sha256_bytes(b""), 0, False)
    except IsADirectoryError:
        raise TargetError(str(path), "is a folder, not a config file") from None
    except OSError as exc:
        raise TargetError(str(path), f"cannot read it: {_reason(exc)}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TargetError(
            str(path), f"is not UTF-8 text (bad byte at offset {exc.start}); syncd only edits UTF-8"
        ) from None
    return Snapshot(path, real, data, text, sha256_bytes(data), mode, True)


def _read_bytes_or_none(real: Path) -> bytes | None:
    try:
        return real.read_bytes()
    except FileNotFoundError:
        return None


def _fsync_dir(directory: Path) -> None:
    # The rename has already happened; some file systems refuse fsync on a folder, and failing
    # here would report a write that did happen as one that did not.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _temp_name(name: str) -> str:
    return f".{name}{_TEMP_MARK}{secrets.token_hex(6)}{_TEMP_SUFFIX}"


def _write_temp(
    directory: Path, name: str, data: bytes, mode: int, owner: os.stat_result | None
) -> Path:
    """Write `data` to a fresh temp file in `directory` and fsync it; on any error remove it."""
    tmp = directory / _temp_name(name)
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

    For syncd's own files. Raises OSError (callers translate it into their error kind); the temp
    file never outlives a failure.
    """
    real = _real(path)
    tmp = _write_temp(real.parent, real.name, data, mode, None)
    try:
        os.replace(tmp, real)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(real.parent)


def clean_stale_temps(directory: Path, name: str) -> int:
    """Remove syncd's temp files for `name` left in `directory` by a killed writer; return how many.

    Only safe while holding that target's lock (or when no syncd runs): a live writer's temp
    file looks the same.
    """
    removed = 0
    try:
        entries = list(directory.iterdir())
    except OSError:
        return 0
    prefix = f".{name}{_TEMP_MARK}"
    for entry in entries:
        if entry.name.startswith(prefix) and entry.name.endswith(_TEMP_SUFFIX):
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
                removed += 1
    return removed


def backup_dir_for(real_path: Path, state_dir: Path) -> Path:
    digest = sha256_bytes(str(real_path).encode("utf-8", "surrogateescape"))[:8]
    return state_dir / BACKUPS_DIR / f"{real_path.stem}-{digest}"


def _backup(real: Path, data: bytes, state_dir: Path) -> Path:
    directory = private_dir(backup_dir_for(real, state_dir))
    ext = real.suffix.lstrip(".") or "bak"
    # Names sort in time order (rotation relies on it): on a clash, step one microsecond on.
    stamp = datetime.now(UTC)
    while True:
        target = directory / f"{stamp:%Y%m%dT%H%M%S.%fZ}.{ext}"
        if not target.exists():
            break
        stamp += timedelta(microseconds=1)
    atomic_write_bytes(target, data, mode=0o600)
    return target


def _rotate_backups(directory: Path, keep: int) -> None:
    entries = list(directory.iterdir())
    for entry in entries:
        # Temp files of a backup cut short by a kill; we hold the target's lock, so none is live.
        if entry.name.startswith(".") and _TEMP_MARK in entry.name:
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
    files = sorted(p for p in entries if not p.name.startswith(".") and p.is_file())
    for old in files[: max(len(files) - keep, 0)]:
        with contextlib.suppress(FileNotFoundError):
            old.unlink()


def _read_only_reason(snap: Snapshot) -> str | None:
    """Why the target cannot be replaced, judged from permission bits too: root ignores them,
    but a file chmod 0444 (or a home-manager link into /nix/store) means "leave me alone" to
    root as well."""
    real = snap.real_path
    if snap.exists and (not snap.mode & stat.S_IWUSR or not os.access(real, os.W_OK)):
        return f"{real} has mode {snap.mode:04o}"
    directory = real.parent
    try:
        dir_mode = stat.S_IMODE(directory.stat().st_mode)
    except FileNotFoundError:
        return None  # reported as a missing folder when the temp file cannot be created
    if not dir_mode & stat.S_IWUSR or not os.access(directory, os.W_OK | os.X_OK):
        return f"its folder {directory} is not writable (mode {dir_mode:04o})"
    return None


def unwritable_reason(path: Path) -> str | None:
    """Why syncd could not replace `path` (a read-only file or folder, a link into a read-only
    tree such as the Nix store), or None when it could; a missing file is judged by its folder."""
    real = _real(path)
    try:
        mode, exists = stat.S_IMODE(os.stat(real).st_mode), True
    except FileNotFoundError:
        mode, exists = 0, False
    except OSError as exc:
        raise TargetError(str(path), f"cannot read it: {_reason(exc)}") from None
    return _read_only_reason(Snapshot(path, real, b"", "", "", mode, exists))


def _os_failure(path: Path, exc: OSError) -> TargetError:
    if exc.errno in _READ_ONLY_ERRNOS:
        return TargetError(str(path), f"is read-only: {_reason(exc)}; syncd cannot update it")
    if exc.errno == errno.ENOENT:
        return TargetError(str(path), "its folder does not exist; nothing written")
    return TargetError(str(path), f"cannot write it: {_reason(exc)}; nothing changed")


def write_target(
    path: Path,
    transform: Callable[[str], str | None],
    *,
    state_dir: Path,
    retries: int = 5,
    keep_backups: int = 20,
    create_mode: int = NEW_TARGET_MODE,
    lock_timeout: float = 10.0,
    after: Callable[[WriteResult], None] | None = None,
) -> WriteResult:
    """Apply `transform` (old text → new text, or None for "nothing to do") to a target, safely.

    `transform` may run more than once: when the file changes between the read and the replace
    it is called again on the new text, at most `retries` more times. Its exceptions propagate
    and leave nothing behind. Failures to write are TargetError with a one-line reason; the
    target is then exactly as it was. `after` runs with the result while the target lock is still
    held, so that what syncd records about its write (the state file) cannot interleave with
    another syncd's write of the same target.
    """
    real = _real(path)
    with target_lock(real, state_dir, timeout=lock_timeout):
        result = _write_locked(path, real, transform, state_dir, retries, keep_backups, create_mode)
        if after is not None:
            after(result)
        return result


def _write_locked(
    path: Path,
    real: Path,
    transform: Callable[[str], str | None],
    state_dir: Path,
    retries: int,
    keep_backups: int,
    create_mode: int,
) -> WriteResult:
    clean_stale_temps(real.parent, real.name)
    snap = read_target(path)
    attempts = 0
    while True:
        attempts += 1
        new_text = transform(snap.text)
        if new_text is None or new_text == snap.text:
            return WriteResult(False, snap.sha256, snap.text, snap.text, None, attempts)
        try:
            data = new_text.encode("utf-8")
        except UnicodeEncodeError:
            msg = "the new text is not valid UTF-8; nothing written"
            raise TargetError(str(path), msg) from None
        outcome = _swap(path, snap, data, state_dir, create_mode)
        if isinstance(outcome, Snapshot):
            if attempts > retries:
                raise TargetError(
                    str(path), f"changed while syncing ({attempts} tries); will retry"
                )
            snap = outcome
            continue
        if outcome is not None:
            with contextlib.suppress(OSError):
                _rotate_backups(outcome.parent, keep_backups)
        return WriteResult(True, sha256_bytes(data), snap.text, new_text, outcome, attempts)


def _swap(
    path: Path, snap: Snapshot, data: bytes, state_dir: Path, create_mode: int
) -> Snapshot | Path | None:
    """One replace attempt: a new Snapshot when the file moved under us, else the backup if any."""
    real = snap.real_path
    reason = _read_only_reason(snap)
    if reason is not None:
        raise TargetError(str(path), f"is read-only: {reason}; syncd cannot update it")
    backup: Path | None = None
    if snap.exists:
        try:
            backup = _backup(real, snap.data, state_dir)
        except OSError as exc:
            raise TargetError(
                str(path), f"cannot back it up in {state_dir}: {_reason(exc)}; nothing written"
            ) from None
    owner = None
    if snap.exists:
        with contextlib.suppress(OSError):
            owner = real.stat()
    mode = snap.mode if snap.exists else create_mode
    try:
        tmp = _write_temp(real.parent, real.name, data, mode, owner)
    except OSError as exc:
        _discard(backup)
        raise _os_failure(path, exc) from None
    try:
        current = _read_bytes_or_none(real)
        if current != (snap.data if snap.exists else None):
            _discard(tmp)
            _discard(backup)
            return read_target(path)
        os.replace(tmp, real)
    except OSError as exc:
        _discard(tmp)
        _discard(backup)
        raise _os_failure(path, exc) from None
    except BaseException:
        _discard(tmp)
        raise
    _fsync_dir(real.parent)
    return backup


def _discard(path: Path | None) -> None:
    if path is not None:
        with contextlib.suppress(OSError):
            path.unlink()
