"""Reads local files without hanging or ballooning: regular files only, opened non-blocking, size-limited.

A named pipe as the config (`--config FIFO`), auth.json or a `{file:}` key would block a plain
`read()` forever, and `/dev/zero` would fill memory. So every file syncd reads from outside its
own writes is opened with O_NONBLOCK, checked with fstat, and only then read, up to a limit.
Refusals are OSErrors (UnsafeFile) whose `strerror` says what the path is, so every reader's
existing `except OSError` and its message keep working.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

MIB = 1024 * 1024
CONFIG_LIMIT = 16 * MIB  # an OpenCode config; the largest real ones are a few hundred KB
SMALL_LIMIT = 1 * MIB  # auth.json, syncd's settings, a {file:} key
DATA_LIMIT = 64 * MIB  # syncd's own state and caches, OpenCode's catalog cache

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


class UnsafeFile(OSError):
    """The path is not a regular file, or it is over the size limit; `strerror` says which."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(errno.EINVAL, reason, str(path))


def describe(mode: int) -> str:
    """What a file of `mode` is, for a message: "a named pipe", "a folder"..."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def read_regular(path: Path, limit: int) -> tuple[bytes, os.stat_result]:
    """The bytes of `path` (through symlinks) and its stat, when it is a regular file of at most
    `limit` bytes. FileNotFoundError and the other OSErrors of open() pass through."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeFile(path, f"is {describe(info.st_mode)}, not a regular file")
        if info.st_size > limit:
            raise UnsafeFile(path, f"is larger than {_size(limit)}")
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(fd, min(MIB, limit + 1 - size)):
            size += len(chunk)
            if size > limit:  # it grew while being read
                raise UnsafeFile(path, f"is larger than {_size(limit)}")
            chunks.append(chunk)
        return b"".join(chunks), info
    finally:
        os.close(fd)


def read_bytes(path: Path, limit: int) -> bytes:
    return read_regular(path, limit)[0]


def _size(limit: int) -> str:
    return f"{limit // MIB} MiB" if limit >= MIB else f"{limit} bytes"
