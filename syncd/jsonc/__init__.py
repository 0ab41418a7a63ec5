"""The public JSONC API of syncd: parse OpenCode configs and patch them without disturbing their text.

`parse(text)` returns the data; `modify(text, path, value)` and `modify_many(text, changes)` return
the patched text, with `REMOVE` as the value that deletes. Errors: `JsoncError` (a syncd error with
1-based `.line`, `.col` and `.msg`; `str()` is `line:col: msg`) when the input is not valid JSONC,
and `syncd.errors.PatchError` when a path is impossible or the patched text would not parse back
to exactly the intended data, in which case nothing is returned.
"""

from __future__ import annotations

from syncd.jsonc.edit import REMOVE, modify, modify_many
from syncd.jsonc.parser import JsoncError, parse

__all__ = ["REMOVE", "JsoncError", "modify", "modify_many", "parse"]
