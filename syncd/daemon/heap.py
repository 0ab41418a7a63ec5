"""Keeps a long-running daemon's memory flat: glibc's malloc is told to give big blocks back.

What grew in `bench/daemon_soak.py` was not Python objects (their count stayed flat) but free
space inside malloc's heap. Each write handles a few blocks of a config's or a state file's size
(hundreds of KB: the text read, the text written, their bytes). glibc maps such a block on its
own at first, but every time one is freed it raises its threshold for doing so, up to 32 MB;
from then on they are cut from the heap, between smaller blocks that live on, and the holes they
leave are rarely the right size again. Pinning the threshold (which also stops it moving) keeps
them mapped apart, so each goes back to the system when freed. Other C libraries (macOS, musl)
are left as they are.
"""

from __future__ import annotations

import ctypes
import sys

M_MMAP_THRESHOLD = -3  # glibc's malloc.h
BIG_BLOCK = 128 * 1024  # glibc's own starting threshold, kept from moving


def give_back_big_blocks() -> bool:
    """Pin glibc's mmap threshold at BIG_BLOCK; False where that is not glibc or it refused."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)  # the symbols already in the process: its own C library
        if not hasattr(libc, "gnu_get_libc_version"):
            return False  # musl has a mallopt that does nothing
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, BIG_BLOCK) == 1)
