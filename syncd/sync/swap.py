"""Atomic exchange and no-clobber renames (Linux renameat2, macOS renamex_np) for store.py's write path.

Both answer False when this kernel, C library or file system cannot do it (EINVAL, ENOSYS, EXDEV,
ENOTSUP...): the caller then falls back to a plain rename. Any other failure is an OSError.
"""

from __future__ import annotations

import errno
import os
import platform
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # ctypes loads with the first write: a run with nothing to write never needs it
    import ctypes

_AT_FDCWD = -100
# <linux/fs.h>
_LINUX_NOREPLACE = 1
_LINUX_EXCHANGE = 2
# <stdio.h> on macOS
_MAC_SWAP = 0x2
_MAC_EXCL = 0x4
# renameat2's syscall number, for a C library without the wrapper (glibc < 2.28, some musl)
_SYSCALL_NR = {
    "x86_64": 316, "amd64": 316, "i386": 353, "i686": 353, "aarch64": 276, "arm64": 276,
    "riscv64": 276, "loongarch64": 276, "armv7l": 382, "armv6l": 382, "ppc64le": 357,
    "ppc64": 357, "s390x": 347,
}
# "not here": the kernel, the C library or this file system lacks the operation
_UNSUPPORTED = {errno.EINVAL, errno.ENOSYS, errno.EXDEV, errno.ENOTSUP, errno.EOPNOTSUPP}

_Call = Callable[[bytes, bytes, int], int]


def _linux_call(libc: ctypes.CDLL, use_wrapper: bool = True) -> _Call | None:
    import ctypes

    wrapper = getattr(libc, "renameat2", None) if use_wrapper else None
    if wrapper is not None:
        wrapper.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                            ctypes.c_uint]
        wrapper.restype = ctypes.c_int
        return lambda a, b, flags: int(wrapper(_AT_FDCWD, a, _AT_FDCWD, b, flags))
    nr = _SYSCALL_NR.get(platform.machine().lower())
    if nr is None:
        return None
    syscall = libc.syscall
    syscall.restype = ctypes.c_long

    def raw(a: bytes, b: bytes, flags: int) -> int:
        return int(syscall(ctypes.c_long(nr), ctypes.c_int(_AT_FDCWD), ctypes.c_char_p(a),
                           ctypes.c_int(_AT_FDCWD), ctypes.c_char_p(b), ctypes.c_uint(flags)))

    return raw


def _mac_call(libc: ctypes.CDLL) -> _Call | None:
    import ctypes

    fn = getattr(libc, "renamex_np", None)
    if fn is None:
        return None
    fn.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return lambda a, b, flags: int(fn(a, b, flags))


@cache
def _call() -> tuple[_Call, int, int] | None:
    """The rename-with-flags call of this OS and its (exchange, no-replace) flags, or None."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    if sys.platform.startswith("linux"):
        linux = _linux_call(libc)
        return None if linux is None else (linux, _LINUX_EXCHANGE, _LINUX_NOREPLACE)
    if sys.platform == "darwin":
        mac = _mac_call(libc)
        return None if mac is None else (mac, _MAC_SWAP, _MAC_EXCL)
    return None


def _rename(src: Path, dst: Path, which: int) -> bool:
    found = _call()
    if found is None:
        return False
    import ctypes

    call, exchange_flag, noreplace_flag = found
    flags = exchange_flag if which == _LINUX_EXCHANGE else noreplace_flag
    ctypes.set_errno(0)
    if call(os.fsencode(src), os.fsencode(dst), flags) == 0:
        return True
    code = ctypes.get_errno()
    if code in _UNSUPPORTED:
        return False
    raise OSError(code, os.strerror(code), os.fspath(dst))


def exchange(a: Path, b: Path) -> bool:
    """Atomically swap the files at `a` and `b` (both must exist); False when not supported here."""
    return _rename(a, b, _LINUX_EXCHANGE)


def rename_noreplace(src: Path, dst: Path) -> bool:
    """Rename `src` to `dst` unless `dst` exists (FileExistsError then); False when not supported."""
    return _rename(src, dst, _LINUX_NOREPLACE)
