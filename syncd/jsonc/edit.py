"""Compute minimal, style-preserving text edits for set/remove operations on a JSONC document."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from syncd.errors import PatchError
from syncd.jsonc.layout import Layout, render_key
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


class _Conflict(Exception):
    """Two changes touch overlapping text; the batch is redone one change at a time."""


class _Group:
    """What happens to one container: entries removed and new entries appended (in order)."""

    __slots__ = ("node", "parent_multiline", "removed", "added")

    def __init__(self, node: Node, parent_multiline: bool) -> None:
        self.node = node
        self.parent_multiline = parent_multiline
        self.removed: set[int] = set()
        self.added: dict[Any, Any] = {}  # object: key -> value; array: 0, 1, ... -> value


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


def apply_edits(text: str, edits: list[tuple[int, int, str]]) -> str:
    """Apply (start, end, new_text) edits computed against `text`; inserts at one offset keep their order."""
    edits = sorted(edits, key=lambda e: (e[0], e[1]))
    out: list[str] = []
    pos = 0
    for start, end, new in edits:
        if start < pos:
            raise _Conflict
        out.append(text[pos:start])
        out.append(new)
        pos = end
    out.append(text[pos:])
    return "".join(out)


class _Batch:
    def __init__(self, text: str, root: Node) -> None:
        self.text = text
        self.root = root
        self.lay = Layout(text, root)
        self.edits: list[tuple[int, int, str]] = []
        self.groups: dict[int, _Group] = {}
        self.replaced: set[int] = set()  # nodes whose text is replaced or removed
        self.touched: set[int] = set()  # containers some change walked through
        self.wrappers: set[int] = set()  # dicts we created for missing intermediate keys

    def group(self, node: Node, parent_multiline: bool) -> _Group:
        g = self.groups.get(id(node))
        if g is None:
            g = self.groups[id(node)] = _Group(node, parent_multiline)
        return g

    def plan(self, path: Path, value: Any) -> None:
        lay, node = self.lay, self.root
        parent_multiline = True
        if not path:
            if self.touched or self.replaced:
                raise _Conflict
            self.replaced.add(id(node))
            base = lay.indent_at(node.start)
            self.edits.append((node.start, node.end, lay.render(value, base, not lay.one_line)))
            return
        for depth, seg in enumerate(path):
            last = depth == len(path) - 1
            if id(node) in self.replaced:
                raise _Conflict
            self.touched.add(id(node))
            g = self.groups.get(id(node))
            if node.kind == "scalar":
                raise PatchError(f"path {list(path)!r}: {seg!r} is inside a scalar value")
            if node.kind == "object":
                if not isinstance(seg, str):
                    raise PatchError(f"path {list(path)!r}: {seg!r} is not a key of an object")
                idx = node.index.get(seg)
                if idx is not None and g is not None and idx in g.removed:
                    raise _Conflict
                if idx is None:
                    self.plan_missing(node, path[depth:], value, parent_multiline)
                    return
            else:  # an array: a second structural change would shift indices, so redo one by one
                if g is not None and (g.removed or g.added):
                    raise _Conflict
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
                    raise _Conflict
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
                raise _Conflict  # editing inside a value the caller gave: keep their object intact
            holder = nxt
        if value is REMOVE:
            holder.pop(path[-1], None)
        else:
            holder[path[-1]] = value

    def run(self, changes: Sequence[tuple[Path, Any]]) -> str:
        for path, value in changes:
            self.plan(path, value)
        for g in self.groups.values():
            if g.removed or g.added:
                self.emit(g)
        return apply_edits(self.text, self.edits)

    def items(self, g: _Group, base: str, multiline: bool) -> list[str]:
        lay = self.lay
        pad = lay.value_pad(g.node)
        if g.node.kind == "array":
            return [lay.render(v, base, multiline, pad) for v in g.added.values()]
        return [f"{render_key(k)}: {lay.render(v, base, multiline, pad)}" for k, v in g.added.items()]

    def emit(self, g: _Group) -> None:
        node, lay, edits = g.node, self.lay, self.edits
        entries = node.entries
        survivors = [i for i in range(len(entries)) if i not in g.removed]
        trailing = entries[-1].comma >= 0 if entries else lay.trailing_commas
        last_removed = bool(entries) and len(entries) - 1 in g.removed
        if lay.multiline(node):
            for i in sorted(g.removed):
                e = entries[i]
                pos, hit = lay.trailing(e.node.end)
                start = lay.line_start(e.start)
                edits.append((start, pos + lay.break_len(pos) if hit else pos, ""))
            if last_removed and not trailing and survivors and not g.added:
                comma = entries[survivors[-1]].comma
                edits.append((comma, comma + 1, ""))
            if g.added:
                self.append_lines(g, survivors, trailing)
            return
        self.inline_remove(g, survivors)
        if g.added:
            self.append_inline(g, survivors, trailing, last_removed)

    def append_lines(self, g: _Group, survivors: list[int], trailing: bool) -> None:
        node, lay, t = g.node, self.lay, self.text
        entries = node.entries
        indent = lay.indent_at(entries[0].start) if entries else lay.indent_at(node.start) + lay.unit
        ml = not lay.single_line_values(node)
        items = self.items(g, indent, ml)
        n = len(items)
        commas = ["," if k < n - 1 or trailing else "" for k in range(n)]
        if survivors:
            p = entries[survivors[-1]]
            if p.comma < 0:
                self.edits.append((p.node.end, p.node.end, ","))
            body = "".join(lay.eol + indent + it + c for it, c in zip(items, commas, strict=True))
            pos, hit = lay.trailing(p.node.end)
            at = pos if hit else (p.comma + 1 if p.comma >= 0 else p.node.end)
            self.edits.append((at, at, body))
            return
        close = node.end - 1
        lines = "".join(indent + it + c + lay.eol for it, c in zip(items, commas, strict=True))
        if lay.first_on_line(close):
            at = lay.line_start(close)
            self.edits.append((at, at, lines))
        else:
            q = close
            while t[q - 1] in " \t":
                q -= 1
            self.edits.append((q, close, lay.eol + lines + lay.indent_at(node.start)))

    def inline_remove(self, g: _Group, survivors: list[int]) -> None:
        entries, edits = g.node.entries, self.edits
        i = 0
        while i < len(entries):
            if i not in g.removed:
                i += 1
                continue
            j = i
            while j + 1 < len(entries) and j + 1 in g.removed:
                j += 1
            if j + 1 < len(entries):
                edits.append((entries[i].start, entries[j + 1].start, ""))
            elif i > 0:
                # the removed tail's own comma (if any) survives as the previous entry's comma
                edits.append((entries[i - 1].node.end, entries[j].node.end, ""))
            else:
                last = entries[j]
                edits.append((entries[0].start, last.comma + 1 if last.comma >= 0 else last.node.end, ""))
            i = j + 1

    def append_inline(self, g: _Group, survivors: list[int], trailing: bool, last_removed: bool) -> None:
        node, lay, t = g.node, self.lay, self.text
        entries = node.entries
        if survivors:
            if trailing and last_removed:
                raise _Conflict
            items = self.items(g, "", False)
            p = entries[survivors[-1]]
            if trailing:
                self.edits.append((p.comma + 1, p.comma + 1, " " + ", ".join(items) + ","))
            else:
                self.edits.append((p.node.end, p.node.end, ", " + ", ".join(items)))
            return
        if entries:  # every entry removed: the deletion starts at the first one
            items = self.items(g, "", False)
            self.edits.append((entries[0].start, entries[0].start, ", ".join(items)))
            return
        close = node.end - 1
        q = close
        while t[q - 1] in " \t":
            q -= 1
        if not lay.one_line and g.parent_multiline:
            ind = lay.indent_at(node.start)
            inner = ind + lay.unit
            items = self.items(g, inner, True)
            sep = "," + lay.eol + inner
            tail = "," if trailing else ""
            self.edits.append((q, close, lay.eol + inner + sep.join(items) + tail + lay.eol + ind))
            return
        pad = lay.pad(node)
        items = self.items(g, "", False)
        start = node.start + 1 if q == node.start + 1 else q
        self.edits.append((start, close, pad + ", ".join(items) + pad))


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
        except _Conflict:
            result = text
            for change in changes:
                try:
                    result = _Batch(result, parse_tree(result)).run([change])
                except (_Conflict, JsoncError) as exc:
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
