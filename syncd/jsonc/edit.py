"""Compute minimal, style-preserving text edits for set/remove operations on a JSONC document."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from syncd.errors import PatchError
from syncd.jsonc.emit import Conflict, Edit, Emitter, Group
from syncd.jsonc.layout import Layout
from syncd.jsonc.parser import JsoncError, Node, parse, parse_tree

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


def _same(a: Any, b: Any) -> bool:
    """Deep equality that also compares key order and tells 1, 1.0 and True apart."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):  # -0.0 == 0.0, but the file would say otherwise
        return repr(a) == repr(b)
    return bool(a == b)


def _bad_index(seg: Any, size: int, append_ok: bool) -> bool:
    limit = size + 1 if append_ok else size
    return not isinstance(seg, int) or isinstance(seg, bool) or not 0 <= seg < limit


def _apply_data(data: Any, path: Path, value: Any, foreign: set[int]) -> Any:
    """The intended data after one change; `foreign` holds ids of caller values stored so far."""
    if not path:
        if value is REMOVE:
            raise PatchError("cannot remove the whole document")
        foreign.add(id(value))
        return value
    cur = data
    for depth, seg in enumerate(path):
        last = depth == len(path) - 1
        if isinstance(cur, dict):
            if not isinstance(seg, str):
                raise PatchError(f"path {list(path)!r}: {seg!r} is not a key of an object")
            if last:
                if value is REMOVE:
                    cur.pop(seg, None)
                else:
                    cur[seg] = value
                    foreign.add(id(value))
                return data
            if seg not in cur:
                if value is REMOVE:
                    return data
                cur[seg] = {}
        elif isinstance(cur, list):
            if _bad_index(seg, len(cur), last and value is not REMOVE):
                raise PatchError(f"path {list(path)!r}: no element {seg!r} in an array")
            assert isinstance(seg, int)
            if last:
                if value is REMOVE:
                    del cur[seg]
                elif seg == len(cur):
                    cur.append(value)
                else:
                    cur[seg] = value
                foreign.add(id(value))
                return data
        else:
            raise PatchError(f"path {list(path)!r}: {seg!r} is inside a {type(cur).__name__}")
        nxt = cur[seg]
        if id(nxt) in foreign:  # copy before editing inside a value the caller gave us
            nxt = cur[seg] = copy.deepcopy(nxt)
        cur = nxt
    return data


def apply_edits(text: str, edits: list[Edit]) -> str:
    """Apply (start, end, new_text) edits computed against `text`; inserts at one offset keep their order."""
    edits = sorted(edits, key=lambda e: (e[0], e[1]))
    out: list[str] = []
    pos = 0
    for start, end, new in edits:
        if start < pos:
            raise Conflict
        out.append(text[pos:start])
        out.append(new)
        pos = end
    out.append(text[pos:])
    return "".join(out)


class _Batch:
    """Walks each change's path once: a value replaced in place is an edit now; entries removed
    from or appended to a container are collected per container and emitted together at the end."""

    def __init__(self, text: str, root: Node) -> None:
        self.text = text
        self.root = root
        self.lay = Layout(text, root)
        self.edits: list[Edit] = []
        self.groups: dict[int, Group] = {}
        self.replaced: set[int] = set()  # nodes whose text is replaced or removed
        self.touched: set[int] = set()  # containers some change walked through
        self.wrappers: set[int] = set()  # dicts we created for missing intermediate keys

    def group(self, node: Node, parent_multiline: bool) -> Group:
        g = self.groups.get(id(node))
        if g is None:
            g = self.groups[id(node)] = Group(node, parent_multiline)
        return g

    def plan(self, path: Path, value: Any) -> None:
        lay, node = self.lay, self.root
        parent_multiline = True
        if not path:
            if self.touched or self.replaced:
                raise Conflict
            self.replaced.add(id(node))
            base = lay.indent_at(node.start)
            self.edits.append((node.start, node.end, lay.render(value, base, not lay.one_line)))
            return
        for depth, seg in enumerate(path):
            last = depth == len(path) - 1
            if id(node) in self.replaced:
                raise Conflict
            self.touched.add(id(node))
            g = self.groups.get(id(node))
            if node.kind == "scalar":
                raise PatchError(f"path {list(path)!r}: {seg!r} is inside a scalar value")
            if node.kind == "object":
                if not isinstance(seg, str):
                    raise PatchError(f"path {list(path)!r}: {seg!r} is not a key of an object")
                idx = node.index.get(seg)
                if idx is not None and g is not None and idx in g.removed:
                    raise Conflict
                if idx is None:
                    self.plan_missing(node, path[depth:], value, parent_multiline)
                    return
            else:  # an array: a second structural change would shift indices, so redo one by one
                if g is not None and (g.removed or g.added):
                    raise Conflict
                if _bad_index(seg, len(node.entries), last and value is not REMOVE):
                    raise PatchError(f"path {list(path)!r}: no element {seg!r} in an array")
                assert isinstance(seg, int)
                idx = seg
                if idx == len(node.entries):
                    self.group(node, parent_multiline).added[0] = value
                    return
            entry = node.entries[idx]
            if last:
                target = entry.node
                if id(target) in self.touched or id(target) in self.replaced:
                    raise Conflict
                if value is REMOVE:
                    self.replaced.add(id(target))
                    self.group(node, parent_multiline).removed.add(idx)
                elif not _same(target.value, value):
                    self.replaced.add(id(target))
                    ml = lay.multiline(node) and not lay.single_line_values(node)
                    base = lay.indent_at(entry.start)
                    text = lay.render(value, base, ml, lay.value_pad(node))
                    self.edits.append((target.start, target.end, text))
                return
            parent_multiline = lay.multiline(node)
            node = entry.node

    def plan_missing(self, node: Node, path: Path, value: Any, parent_multiline: bool) -> None:
        """`path[0]` is not a key of `node`: add it (wrapping the value) or merge into an earlier add."""
        g = self.groups.get(id(node))
        key = path[0]
        if g is None or key not in g.added:
            if value is REMOVE:
                return
            for seg in reversed(path[1:]):
                value = {seg: value}
                self.wrappers.add(id(value))
            self.group(node, parent_multiline).added[key] = value
            return
        holder: Any = g.added
        for seg in path[:-1]:
            nxt = holder.get(seg)
            if nxt is None:
                if value is REMOVE:
                    return
                nxt = holder[seg] = {}
                self.wrappers.add(id(nxt))
            elif id(nxt) not in self.wrappers:
                raise Conflict  # editing inside a value the caller gave: keep their object intact
            holder = nxt
        if value is REMOVE:
            holder.pop(path[-1], None)
        else:
            holder[path[-1]] = value

    def run(self, changes: Sequence[tuple[Path, Any]]) -> str:
        for path, value in changes:
            self.plan(path, value)
        emitter = Emitter(self.text, self.lay, self.edits)
        for g in self.groups.values():
            if g.removed or g.added:
                emitter.emit(g)
        return apply_edits(self.text, self.edits)

def _verify(result: str, expected: Any) -> None:
    try:
        got = parse(result)
    except JsoncError as exc:
        raise PatchError(f"the patched text does not parse ({exc}); nothing was changed") from None
    if not _same(got, expected):
        raise PatchError("the patched text does not hold the intended data; nothing was changed")


def modify_many(text: str, changes: Sequence[tuple[Path, Any]]) -> str:
    """Apply set/REMOVE changes, all computed against `text`, in order; verify the result once.

    Raises JsoncError if `text` is not valid JSONC, PatchError if a path is impossible or the
    result does not parse back to the intended data (then nothing is returned).
    """
    tree = parse_tree(text)
    changes = [(tuple(p), v) for p, v in changes]
    try:
        try:
            result = _Batch(text, tree).run(changes)
        except Conflict:
            result = text
            for change in changes:
                try:
                    result = _Batch(result, parse_tree(result)).run([change])
                except (Conflict, JsoncError) as exc:
                    where = list(change[0])
                    raise PatchError(f"cannot apply the change at {where!r}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise PatchError(f"value cannot be written as JSON: {exc}") from None
    expected: Any = tree.value  # the tree is not used any more: its data becomes the expectation
    foreign: set[int] = set()
    for path, value in changes:
        expected = _apply_data(expected, path, value, foreign)
    _verify(result, expected)
    return result


def modify(text: str, path: Path, value: Any) -> str:
    """Set the value at `path` (keys and indices), or delete it when `value` is REMOVE."""
    return modify_many(text, [(path, value)])
