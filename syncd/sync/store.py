"""The only module that writes user files: locked, backed up, never over bytes it did not plan from.

Writing a target (DESIGN §4.5): lock (per real path, across processes) → read → transform →
nothing to do? touch nothing → back up the old bytes → temp file beside the REAL file (same
mode, fsync) → last check: still the planned-from bytes? else re-plan → swap → check what came
out → fsync the folder → remove what came out.

The swap is renameat2(RENAME_EXCHANGE) on Linux, renamex_np(RENAME_SWAP) on macOS: one atomic
step puts the new file in place and hands back the file that was there. When that is not what
syncd planned from (a save landed in the microseconds after the last check), syncd swaps it back
and re-plans (bounded retries, then an error). New targets are created by a rename that refuses
to replace (RENAME_NOREPLACE / RENAME_EXCL, else link()). Where the OS or the file system cannot
swap (NFS, SMB, FAT, some FUSE, old kernels: EINVAL/ENOSYS/EXDEV/ENOTSUP), a plain rename follows
the last check, and a save landing in the microseconds between them is lost. Left with the swap:
a save landing between the last check and the swap shows syncd's version for the microseconds
until the swap back, and a save written in place through a descriptor opened before the swap
but written after the check of what came out goes into the file that came out.

Symlinks are resolved first, so a stow/chezmoi/home-manager link stays a link; a file with other
hard links is refused (a replace would split them). New targets get mode 0644, like OpenCode's.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from syncd.errors import TargetError
from syncd.sync import swap
from syncd.sync.atomic import (
    TEMP_SUFFIX,
    atomic_write_bytes,
    fsync_dir,
    is_temp_of,
    real_path,
    write_temp,
)
from syncd.sync.backups import backup, rotate
from syncd.sync.locks import target_lock
from syncd.sync.snapshot import (
    Snapshot,
    read_bytes_or_none,
    read_only_reason,
    read_target,
    reason,
    sha256_bytes,
    unwritable_reason,
)

# read_target, sha256_bytes and atomic_write_bytes (for syncd's own files) are served from here too
__all__ = [
    "NEW_TARGET_MODE", "Method", "Replaced", "Snapshot", "Step", "StepHook", "WriteResult",
    "atomic_write_bytes", "clean_stale_temps", "read_target", "replace_exact", "sha256_bytes",
    "unwritable_reason", "write_target",
]

NEW_TARGET_MODE = 0o644
_TAG = 16  # hex digits of a hash kept in a temp file's name
_READ_ONLY_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS}
_SWAP_BACKS = 5  # saves landing one after another inside a swap back: each needs a new save
SETTLE = 0.05  # seconds an in-place save already under way gets to land in what came out


class Step(Enum):
    """Points of the write path where `on_step` is called (tests inject an editor's save there)."""

    READ = "read"  # the target was read; the transform runs next
    PLANNED = "planned"  # the transform gave new text; the backup is next
    BACKED_UP = "backed-up"  # the old bytes are in the backups; the temp file is next
    STAGED = "staged"  # the new bytes are in a temp file, fsynced; the last check is next
    CHECKED = "checked"  # the file still held the planned-from bytes; the swap is next
    SWAPPED = "swapped"  # the new file is in place; what came out is compared next
    VERIFIED = "verified"  # what came out held the planned-from bytes; compared again SETTLE later
    UNDOING = "undoing"  # what came out is not what syncd planned from; the swap back is next
    DONE = "done"  # in place, folder fsynced; the file that came out is removed next


class Method(Enum):
    """How the new file was put in place."""

    EXCHANGE = "exchange"  # atomic swap, checked afterwards (lossless)
    CREATE = "create"  # a new file, by a rename that refuses to replace one (lossless)
    RENAME = "rename"  # plain rename after the last check (the fallback)


StepHook = Callable[[Step, Path], None]


@dataclass(frozen=True)
class Replaced:
    """A successful replace: where the old bytes were backed up, and how it was done."""

    backup: Path | None
    method: Method


@dataclass(frozen=True)
class WriteResult:
    changed: bool
    sha256: str  # of what syncd wrote (or found): the watcher ignores this hash (syncd's own write)
    old_text: str
    new_text: str
    backup: Path | None
    attempts: int
    method: Method | None = None  # None when nothing was written


def _tag(new: bytes, planned_from: bytes) -> str:
    """What a target's temp file must hold, in its name, for `clean_stale_temps` after a kill."""
    return f"-{sha256_bytes(new)[:_TAG]}-{sha256_bytes(planned_from)[:_TAG]}"


def clean_stale_temps(directory: Path, name: str) -> int:
    """Remove syncd's temp files for `name` left in `directory` by a killed writer; return how many.

    A target's temp file names the hashes of the bytes it was written with and of the bytes the
    write planned from. Holding anything else, it is a save that a swap took out of place, and
    the target still holds syncd's bytes: the writer was killed before its swap back, so this
    swaps it back. Only safe while holding that target's lock (or when no syncd runs): a live
    writer's temp file looks the same.
    """
    removed = 0
    try:
        entries = list(directory.iterdir())
    except OSError:
        return 0
    for entry in entries:
        if is_temp_of(entry.name, name):
            with contextlib.suppress(OSError):
                _put_back_if_displaced(entry, directory / name)
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
                removed += 1
    return removed


def _put_back_if_displaced(tmp: Path, real: Path) -> None:
    parts = tmp.name.removesuffix(TEMP_SUFFIX).rsplit("-", 2)
    if len(parts) != 3 or not all(len(p) == _TAG and p.isalnum() for p in parts[1:]):
        return  # a plain temp file: never swapped
    new_tag, old_tag = parts[1], parts[2]
    held = sha256_bytes(tmp.read_bytes())[:_TAG]
    if held in (new_tag, old_tag):
        return  # our unplaced bytes, or the planned-from bytes a finished swap took out
    on_disk = read_bytes_or_none(real)
    if on_disk is not None and sha256_bytes(on_disk)[:_TAG] == new_tag:
        swap.exchange(tmp, real)  # the user's save goes back in place; ours is removed after


def _refusal(snap: Snapshot) -> str | None:
    """Why the target must not be replaced: it is read-only, or a replace would split it from
    its other hard links."""
    read_only = read_only_reason(snap)
    if read_only is not None:
        return f"is read-only: {read_only}; syncd cannot update it"
    if snap.exists and snap.links > 1:
        return (f"has {snap.links} hard links, and replacing it would split it from its other "
                f"names: make those symlinks to {snap.real_path} (ln -sf) and syncd will follow "
                "them")
    return None


def _os_failure(path: Path, exc: OSError) -> TargetError:
    if exc.errno in _READ_ONLY_ERRNOS:
        return TargetError(str(path), f"is read-only: {reason(exc)}; syncd cannot update it")
    if exc.errno == errno.ENOENT:
        return TargetError(str(path), "its folder does not exist; nothing written")
    return TargetError(str(path), f"cannot write it: {reason(exc)}; nothing changed")


def _no_step(step: Step, real: Path) -> None:
    pass


def write_target(
    path: Path,
    transform: Callable[[str], str | None],
    *,
    state_dir: Path,
    retries: int = 5,
    keep_backups: int = 20,
    create_mode: int = NEW_TARGET_MODE,
    lock_timeout: float = 10.0,
    abort: threading.Event | None = None,
    after: Callable[[WriteResult], None] | None = None,
    on_step: StepHook | None = None,
) -> WriteResult:
    """Apply `transform` (old text → new text, or None for "nothing to do") to a target, safely.

    `transform` may run more than once: when the file changes between the read and the replace
    it is called again on the new text, at most `retries` more times. Its exceptions propagate
    and leave nothing behind. Failures to write are TargetError with a one-line reason; the
    target is then exactly as it was. `after` runs with the result while the target lock is still
    held, so that what syncd records about its write (the state file) cannot interleave with
    another syncd's write of the same target. `abort` ends a wait for the lock (Stopping).
    `on_step` is a test seam (see `Step`).
    """
    real = real_path(path)
    hook = on_step or _no_step
    with target_lock(real, state_dir, timeout=lock_timeout, abort=abort):
        clean_stale_temps(real.parent, real.name)
        snap = read_target(path)
        attempts = 0
        while True:
            attempts += 1
            hook(Step.READ, real)
            new_text = transform(snap.text)
            if new_text is None or new_text == snap.text:
                result = WriteResult(False, snap.sha256, snap.text, snap.text, None, attempts)
                break
            try:
                data = new_text.encode("utf-8")
            except UnicodeEncodeError:
                msg = "the new text is not valid UTF-8; nothing written"
                raise TargetError(str(path), msg) from None
            hook(Step.PLANNED, real)
            outcome = replace_exact(snap, data, state_dir=state_dir, create_mode=create_mode,
                                    on_step=hook)
            if isinstance(outcome, Snapshot):
                if attempts > retries:
                    raise TargetError(
                        str(path), f"changed while syncing ({attempts} tries); will retry"
                    )
                snap = outcome
                continue
            if outcome.backup is not None:
                with contextlib.suppress(OSError):
                    rotate(outcome.backup.parent, keep_backups)
            result = WriteResult(True, sha256_bytes(data), snap.text, new_text, outcome.backup,
                                 attempts, outcome.method)
            break
        if after is not None:
            after(result)
        return result


def replace_exact(
    snap: Snapshot, data: bytes, *, state_dir: Path, create_mode: int = NEW_TARGET_MODE,
    on_step: StepHook | None = None,
) -> Snapshot | Replaced:
    """Put `data` in place of the target iff it still holds `snap`'s bytes (or is still absent).

    Returns the target as it is now when it changed since `snap` (plan again from that), else
    how it was replaced. The caller holds the target's lock (`target_lock`). TargetError when
    it cannot be written; the target is then as it was.
    """
    hook = on_step or _no_step
    path, real = snap.path, snap.real_path
    refusal = _refusal(snap)
    if refusal is not None:
        raise TargetError(str(path), refusal)
    saved: Path | None = None
    if snap.exists:
        try:
            saved = backup(real, snap.data, state_dir)
        except OSError as exc:
            raise TargetError(
                str(path), f"cannot back it up in {state_dir}: {reason(exc)}; nothing written"
            ) from None
    hook(Step.BACKED_UP, real)
    owner = None
    if snap.exists:
        with contextlib.suppress(OSError):
            owner = real.stat()
    mode = snap.mode if snap.exists else create_mode
    try:
        tmp = write_temp(real.parent, real.name, data, mode, owner, _tag(data, snap.data))
    except OSError as exc:
        _discard(saved)
        raise _os_failure(path, exc) from None
    hook(Step.STAGED, real)
    try:
        method = _install(snap, tmp, data, state_dir, hook)
    except OSError as exc:
        _discard_known(tmp, data, snap.data)
        _discard(saved)
        raise _os_failure(path, exc) from None
    except BaseException:
        _discard_known(tmp, data, snap.data)
        raise
    if method is None:
        _discard(tmp)
        _discard(saved)
        return read_target(path)
    return Replaced(saved, method)


def _install(
    snap: Snapshot, tmp: Path, data: bytes, state_dir: Path, hook: StepHook
) -> Method | None:
    """Move `tmp` into place unless the target moved on from `snap` (None: plan again)."""
    real = snap.real_path
    if read_bytes_or_none(real) != (snap.data if snap.exists else None):
        return None
    hook(Step.CHECKED, real)
    if not snap.exists:
        return _create(tmp, real)
    ours = os.stat(tmp)
    try:
        swapped = swap.exchange(tmp, real)
    except FileNotFoundError:
        return None  # deleted since our check
    if not swapped:
        os.replace(tmp, real)  # the fallback: see the module's docstring
        fsync_dir(real.parent)
        return Method.RENAME
    hook(Step.SWAPPED, real)
    if read_bytes_or_none(tmp) == snap.data:
        # An editor saving in place that opened the file just before the swap writes into the
        # file that came out: give such a write a moment to land, then look again.
        hook(Step.VERIFIED, real)
        time.sleep(SETTLE)
    if read_bytes_or_none(tmp) == snap.data:
        fsync_dir(real.parent)
        hook(Step.DONE, real)
        _discard(tmp)  # the bytes we planned from (backed up)
        return Method.EXCHANGE
    hook(Step.UNDOING, real)
    _swap_back(tmp, real, (ours, data), state_dir)
    fsync_dir(real.parent)
    return None


def _create(tmp: Path, real: Path) -> Method | None:
    """Move `tmp` to `real` unless a file appeared there since the check (None: plan from it)."""
    try:
        if swap.rename_noreplace(tmp, real):
            fsync_dir(real.parent)
            return Method.CREATE
        os.link(tmp, real)  # fails when `real` exists, like the rename above
    except FileExistsError:
        return None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        os.replace(tmp, real)  # a file system without hard links: the fallback
        fsync_dir(real.parent)
        return Method.RENAME
    _discard(tmp)
    fsync_dir(real.parent)
    return Method.CREATE


def _swap_back(
    tmp: Path, real: Path, ours: tuple[os.stat_result, bytes], state_dir: Path
) -> None:
    """Put the save at `tmp` back in place of the file syncd put at `real`, and drop ours.

    Should a newer save have replaced ours (or been written into it) meanwhile, the exchange
    brings that one out instead: it goes in place in turn, and the older save it displaces goes
    to the backups. Each round needs yet another save within microseconds.
    """
    (placed, placed_bytes), placed_is_ours = ours, True
    for _ in range(_SWAP_BACKS):
        putting, putting_bytes = os.stat(tmp), tmp.read_bytes()
        if not swap.exchange(tmp, real):  # it worked a moment ago; be safe all the same
            break
        came_out = os.stat(tmp)
        if _same_file(came_out, placed) and tmp.read_bytes() == placed_bytes:
            if not placed_is_ours:
                _keep_displaced(tmp, real, state_dir)
            _discard(tmp)
            return
        # a newer save came out: it goes in place of the one just put back
        placed, placed_bytes, placed_is_ours = putting, putting_bytes, False
    if not placed_is_ours:
        _keep_displaced(real, real, state_dir)
    os.replace(tmp, real)


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _keep_displaced(source: Path, real: Path, state_dir: Path) -> None:
    """A save older than the one now in place: it goes to the backups, never just away."""
    with contextlib.suppress(OSError):
        backup(real, source.read_bytes(), state_dir)


def _discard_known(tmp: Path, *known: bytes) -> None:
    """Remove `tmp` after a failure, unless it holds a save a swap took out (never lose that)."""
    if read_bytes_or_none(tmp) in known:
        _discard(tmp)


def _discard(path: Path | None) -> None:
    if path is not None:
        with contextlib.suppress(OSError):
            path.unlink()
