"""The public JSONC API of syncd: parse OpenCode configs and patch them without disturbing their text.

`parse(text)` returns the data; `modify(text, path, value)` and `modify_many(text, changes)` return
the patched text, with `REMOVE` as the value that deletes. Errors: `JsoncError` (a syncd error with
1-based `.line`, `.col` and `.msg`; `str()` is `line:col: msg`) when the input is not valid JSONC,
and `syncd.errors.PatchError` when a path is impossible or the patched text would not parse back
to exactly the intended data, in which case nothing is returned.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from syncd.jsonc.parser import JsoncError, parse

__all__ = ["REMOVE", "JsoncError", "modify", "modify_many", "parse"]

Path = Sequence[str | int]


class _Remove:
    _instance: _Remove | None = None

    def __new__(cls) -> _Remove:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "REMOVE"


REMOVE: Any = _Remove()
"""Pass as the value to delete the member or element at the path."""


# The editor loads on the first edit: reading a config (most runs change nothing) does not need it.
def modify_many(text: str, changes: Sequence[tuple[Path, Any]]) -> str:
    """Apply set/REMOVE changes, all computed against `text`, in order; verify the result once."""
    from syncd.jsonc.edit import modify_many as impl

    return impl(text, changes)


def modify(text: str, path: Path, value: Any) -> str:
    """Set the value at `path` (keys and indices), or delete it when `value` is REMOVE."""
    return modify_many(text, [(path, value)])
