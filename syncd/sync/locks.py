"""Cross-process advisory locks in the state dir: one writer per target, one daemon per state."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from syncd.errors import StateError, SyncdError, TargetError

LOCKS_DIR = "locks"
DAEMON_LOCK = "daemon.lock"
_POLL = 0.02  # seconds between non-blocking tries; flock has no timed wait


class LockTimeout(TargetError):
    """Another process held a target's lock for longer than we were willing to wait."""

    def __init__(self, path: str) -> None:
        SyncdError.__init__(self, f"another syncd is writing {path}; try again")
        self.path = path
        self.msg = "another syncd is writing it; try again"


def state_dir_error(path: Path, exc: OSError) -> StateError:
    """An OS error on syncd's state dir (its locks, state, backups) as one line with the fix."""
    why = exc.strerror or type(exc).__name__
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = "free some space there, or point SYNCD_STATE_DIR at another file system"
    else:
        fix = "make that folder writable, or point SYNCD_STATE_DIR at one you own"
    return StateError(f"{path}: {why}; syncd keeps its state, locks and backups there: {fix}")


def private_dir(directory: Path) -> Path:
    """Create `directory` and its missing parents, each with mode 0700."""
    missing = []
    probe = directory
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
    return directory


def lock_file_for(target: Path, state_dir: Path) -> Path:
    """A target's lock file, named from a hash of its real path: every link to it shares one."""
    real = os.path.realpath(target)
    digest = hashlib.sha256(real.encode("utf-8", "surrogateescape")).hexdigest()[:24]
    return state_dir / LOCKS_DIR / f"{digest}.lock"


class Stopping(TargetError):
    """The process is stopping: a write still waiting for its lock gives up."""

    def __init__(self, path: str) -> None:
        SyncdError.__init__(self, f"not written: syncd is stopping ({path})")
        self.path = path
        self.msg = "not written: syncd is stopping"


# flock belongs to an open file description, so two threads of one process would each poll the
# lock and the later one time out with "another syncd is writing" against its own process. Threads
# queue on this in-process lock first; only other processes are ever waited for by polling.
# (Re-entrant: a thread that nests a lock gets to the flock, which then times out as it always
# did, instead of waiting for itself for ever.)
_in_process: dict[Path, threading.RLock] = {}
_in_process_guard = threading.Lock()


def _thread_lock(lock_path: Path) -> threading.RLock:
    with _in_process_guard:
        return _in_process.setdefault(lock_path, threading.RLock())


def _wait(acquire: Callable[[], bool], target: Path, deadline: float,
          abort: threading.Event | None) -> None:
    """Try `acquire` until it succeeds; LockTimeout at `deadline`, Stopping once `abort` is set."""
    while not acquire():
        if abort is not None and abort.is_set():
            raise Stopping(str(target))
        if time.monotonic() >= deadline:
            raise LockTimeout(str(target))
        time.sleep(_POLL)


@contextlib.contextmanager
def target_lock(
    target: Path, state_dir: Path, *, timeout: float = 10.0, abort: threading.Event | None = None
) -> Iterator[None]:
    """Hold the exclusive write lock of `target`, waiting up to `timeout` seconds (LockTimeout).

    Threads of one process wait for each other in turn (no timeout counts against them while
    the lock is their own process's); other processes are waited for up to `timeout`. Do not
    nest two locks of one target in one thread. `abort`: a set event ends the wait (Stopping).
    The kernel drops the lock when the holder dies, even by SIGKILL.
    """
    lock_path = lock_file_for(target, state_dir)
    local = _thread_lock(lock_path)
    _wait(lambda: local.acquire(timeout=_POLL), target, float("inf"), abort)
    try:
        try:
            private_dir(lock_path.parent)
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise state_dir_error(Path(exc.filename or lock_path), exc) from None
        try:
            _wait(lambda: _try_flock(fd), target, time.monotonic() + max(timeout, 0.0), abort)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
    finally:
        local.release()


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@dataclass(frozen=True)
class DaemonLock:
    """The held single-daemon lock; `release()` it on a clean stop (dying releases it too)."""

    path: Path
    fd: int
    pid: int

    def release(self) -> None:
        with contextlib.suppress(OSError):
            os.ftruncate(self.fd, 0)
        with contextlib.suppress(OSError):
            os.close(self.fd)

    def __enter__(self) -> DaemonLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def acquire_daemon_lock(state_dir: Path) -> DaemonLock | None:
    """Take the single-daemon lock without waiting; None when another process holds it.

    The holder's pid is written into the file so `daemon_lock_holder` can name it. A state dir
    that cannot hold the lock is a StateError.
    """
    path = state_dir / DAEMON_LOCK
    try:
        private_dir(state_dir)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise state_dir_error(Path(exc.filename or path), exc) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except OSError as exc:  # a file system without locks (ENOLCK)
        os.close(fd)
        raise state_dir_error(path, exc) from None
    except BaseException:
        os.close(fd)
        raise
    pid = os.getpid()
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{pid}\n".encode(), 0)
    except BaseException:
        os.close(fd)
        raise
    return DaemonLock(path=path, fd=fd, pid=pid)


def daemon_lock_holder(state_dir: Path) -> int | None:
    """The pid written by the last daemon to take the lock; ask after `acquire_daemon_lock` failed.

    It does not probe the lock itself: a probe could make a daemon starting that very moment
    believe another one runs.
    """
    try:
        raw = (state_dir / DAEMON_LOCK).read_bytes()[:32]
    except OSError:
        return None
    text = raw.decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else None
