"""The daemon's heap setting: glibc maps a freed-then-wanted big block apart only once pinned."""

from __future__ import annotations

import ctypes
import json
import subprocess
import sys
import textwrap

import pytest

from syncd.daemon.heap import BIG_BLOCK, give_back_big_blocks

libc = ctypes.CDLL(None) if sys.platform.startswith("linux") else None
glibc = pytest.mark.skipif(
    libc is None or not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallinfo2"),
    reason="glibc 2.33+ only (mallinfo2)",
)

PROBE = textwrap.dedent("""
    import ctypes, json, sys
    from syncd.daemon.heap import give_back_big_blocks
    pinned = give_back_big_blocks() if sys.argv[1] == "pin" else None
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, (ctypes.c_size_t,)
    libc.free.argtypes = (ctypes.c_void_p,)
    class Info(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                    "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
    libc.mallinfo2.restype = Info
    libc.free(libc.malloc(4 << 20))  # a big block freed: glibc's own threshold would rise past it
    before = libc.mallinfo2().hblkhd
    block = libc.malloc(int(sys.argv[2]))
    print(json.dumps({"pinned": pinned, "mapped": libc.mallinfo2().hblkhd - before}))
    libc.free(block)
""")


def probe(mode: str, size: int) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", PROBE, mode, str(size)], capture_output=True,
                         text=True, check=True, timeout=60).stdout
    return json.loads(out)


@glibc
def test_a_pinned_threshold_maps_a_config_sized_block_apart_after_a_bigger_one_was_freed() -> None:
    size = 3 * BIG_BLOCK  # a config or state file of a few hundred KB
    assert probe("leave", size)["mapped"] == 0  # the creep: cut from the heap, between live blocks
    pinned = probe("pin", size)
    assert pinned["pinned"] is True
    assert pinned["mapped"] >= size  # mapped on its own: unmapped, given back, when freed


@glibc
def test_small_blocks_stay_in_the_heap_when_pinned() -> None:
    assert probe("pin", BIG_BLOCK // 4)["mapped"] == 0


@pytest.mark.skipif(sys.platform.startswith("linux"), reason="the other platforms")
def test_elsewhere_it_leaves_malloc_alone() -> None:
    assert give_back_big_blocks() is False
