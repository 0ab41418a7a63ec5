"""Compute minimal, style-preserving text edits for set/remove operations on a JSONC document."""

from __future__ import annotations

import copy
from bisect import bisect_right
from collections.abc import Callable, Sequence
from itertools import accumulate
from typing import Any

from syncd.errors import PatchError
from syncd.jsonc import REMOVE
from syncd.jsonc.clean import clean
from syncd.jsonc.emit import Edit, Emitter, Group
from syncd.jsonc.layout import Layout
from syncd.jsonc.parser import DECODER, TRUSTED_DECODER, JsoncError, Node, parse, paused_gc
from syncd.jsonc.spans import SpanTree, span_tree

Path = Sequence[str | int]


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
            raise PatchError("two changes would edit the same text; nothing was changed")
        out.append(text[pos:start])
        out.append(new)
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _nth_kept(removed: list[int], k: int) -> int:
    """The index of the k-th entry (0-based) that is not in the sorted list `removed`."""
    i = k
    while True:
        j = k + bisect_right(removed, i)
        if j == i:
            return i
        i = j


class _Batch:
    """Plans every change against the original text in one walk per change, then emits the edits.

    Each container a change walks through gets a Group: entries removed, entry values replaced,
    entries appended. A change that lands inside a value planned in this batch (appended or
    replaced) edits that value as data, so later changes see earlier ones exactly as a sequential
    application would; a replaced or removed entry drops the groups below it.
    """

    def __init__(self, text: str, tree: SpanTree) -> None:
        self.text = text
        self.root = tree.root
        self.lay = Layout(text, tree.root, tree.trailing_commas)
        self.groups: dict[int, Group] = {}
        self.gone: set[int] = set()  # nodes whose entry was replaced or removed
        self.foreign: set[int] = set()  # ids of caller values the batch holds (copied before edits)
        self.whole: list[Any] = []  # [new root value] once the whole document is replaced
        self.edits: list[Edit] = []
        self.grown: list[tuple[int, int]] = []  # spans of the objects that get new keys

    def group(self, node: Node, parent_multiline: bool, above: list[int]) -> Group:
        g = self.groups.get(id(node))
        if g is None:
            g = self.groups[id(node)] = Group(node, parent_multiline, tuple(above))
        return g

    def plan(self, path: Path, value: Any) -> None:
        if not path:
            if value is REMOVE:
                raise PatchError("cannot remove the whole document")
            self.whole = [value]
            self.foreign.add(id(value))
            return
        if self.whole:  # inside the new document: edit it as data
            _apply_data(self.whole, (0, *path), value, self.foreign)
            return
        lay, node = self.lay, self.root
        parent_multiline = True
        above: list[int] = []
        for depth, seg in enumerate(path):
            last = depth == len(path) - 1
            if node.kind == "scalar":
                raise PatchError(f"path {list(path)!r}: {seg!r} is inside a scalar value")
            g = self.group(node, parent_multiline, above)
            if node.kind == "object":
                if not isinstance(seg, str):
                    raise PatchError(f"path {list(path)!r}: {seg!r} is not a key of an object")
                idx = node.index.get(seg)
                if idx is None or idx in g.removed:  # new, or removed and set again: appended
                    _apply_data(g.added, path[depth:], value, self.foreign)
                    return
            else:
                kept = len(node.entries) - len(g.removed)
                if _bad_index(seg, kept + len(g.added), last and value is not REMOVE):
                    raise PatchError(f"path {list(path)!r}: no element {seg!r} in an array")
                assert isinstance(seg, int)
                if seg >= kept:
                    _apply_data(g.added, (seg - kept, *path[depth + 1 :]), value, self.foreign)
                    return
                idx = _nth_kept(sorted(g.removed), seg) if g.removed else seg
            target = node.entries[idx].node
            if last:
                self.gone.add(id(target))
                if value is REMOVE:
                    g.removed.add(idx)
                    g.replaced.pop(idx, None)
                else:
                    g.replaced[idx] = value
                    self.foreign.add(id(value))
                return
            if idx in g.replaced:  # inside a value this batch replaces: edit it as data
                box = [g.replaced[idx]]
                _apply_data(box, (0, *path[depth + 1 :]), value, self.foreign)
                g.replaced[idx] = box[0]
                return
            parent_multiline = lay.multiline(node)
            above.append(id(node))
            node = target

    def run(self, changes: Sequence[tuple[Path, Any]]) -> str:
        for path, value in changes:
            self.plan(path, value)
        lay, edits = self.lay, self.edits
        if self.whole:
            root = self.root
            if not _same(root.value, self.whole[0]):
                text = lay.render(self.whole[0], lay.indent_at(root.start), not lay.one_line)
                edits.append((root.start, root.end, text))
            return apply_edits(self.text, edits)
        emitter = Emitter(self.text, lay, edits)
        for g in self.groups.values():
            if id(g.node) in self.gone or any(a in self.gone for a in g.above):
                continue  # a change replaced or removed this container after editing inside it
            node = g.node
            if g.added and node.kind == "object":
                self.grown.append((node.start, node.end))
            for idx, new in g.replaced.items():
                entry = node.entries[idx]
                if _same(entry.node.value, new):
                    continue
                ml = lay.multiline(node) and not lay.single_line_values(node)
                text = lay.render(new, lay.indent_at(entry.start), ml, lay.value_pad(node))
                edits.append((entry.node.start, entry.node.end, text))
            if g.removed or g.added:
                emitter.emit(g)
        return apply_edits(self.text, edits)


def _shift(edits: list[Edit]) -> Callable[[int], int]:
    """Where an offset of the original text is in the patched text (offsets outside the edits)."""
    ends = [e[1] for e in edits]
    deltas = list(accumulate(len(t) - (end - start) for start, end, t in edits))

    def shifted(pos: int) -> int:
        k = bisect_right(ends, pos)  # the edits that end at or before pos moved it
        return pos + (deltas[k - 1] if k else 0)

    return shifted


def _verify(result: str, expected: Any, changes: Sequence[tuple[Path, Any]],
            edits: list[Edit], grown: list[tuple[int, int]]) -> None:
    """The patched text must parse to exactly `expected`, in linear time.

    The whole result is decoded at C speed. A key can only be repeated where a key was added:
    each object that got new keys is decoded again with the repeated-key check, from where its
    text now starts, and must end exactly where its text now ends; everywhere else the text is
    the original's (already checked) or rendered from data, which cannot repeat a key.
    The whole document is compared with ==: that catches any value that differs except in key
    order and in 1 / 1.0 / True, which can only differ where text was edited, on the changes'
    paths: there the key order of each object walked through is compared (once per object),
    and each value written is compared strictly.
    """
    plain = clean(result)
    try:
        if plain is None:
            raise ValueError("not plain")
        with paused_gc():
            got = TRUSTED_DECODER.decode(plain.json)
            shifted = _shift(sorted(edits, key=lambda e: (e[0], e[1])))
            for start, end in grown:
                _, stop = DECODER.raw_decode(plain.json, shifted(start))
                if stop != shifted(end - 1) + 1:  # its '}' moved by the edits before and in it
                    raise ValueError("an object that got new keys does not end where it should")
    except (ValueError, RecursionError) as why:
        try:
            parse(result)
        except JsoncError as exc:
            raise PatchError(f"the patched text does not parse ({exc}); nothing was changed") from None
        raise PatchError(f"the patched text does not parse ({why}); nothing was changed") from None
    bad = PatchError("the patched text does not hold the intended data; nothing was changed")
    if got != expected:
        raise bad
    seen: set[int] = set()
    for path, _value in changes:
        a, b = got, expected
        for seg in path:
            if isinstance(b, dict) and id(b) not in seen:
                seen.add(id(b))
                if not isinstance(a, dict) or list(a) != list(b):
                    raise bad
            inside = seg in b if isinstance(b, dict) else (
                isinstance(b, list) and isinstance(seg, int) and 0 <= seg < len(b))
            if inside:
                a, b = a[seg], b[seg]
            else:
                break  # removed, or replaced by a later change: the container above was compared
        else:
            if not _same(a, b):
                raise bad


def modify_many(text: str, changes: Sequence[tuple[Path, Any]]) -> str:
    """Apply set/REMOVE changes, all computed against `text`, in order; verify the result once.

    Raises JsoncError if `text` is not valid JSONC, PatchError if a path is impossible or the
    result does not parse back to the intended data (then nothing is returned). Costs O(size of
    the text + size of the changes): one read of the text, one walk per change, one verification.
    """
    changes = [(tuple(p), v) for p, v in changes]
    tree = span_tree(text, (p for p, _ in changes))
    batch = _Batch(text, tree)
    try:
        result = batch.run(changes)
    except (TypeError, ValueError) as exc:
        raise PatchError(f"value cannot be written as JSON: {exc}") from None
    expected: Any = tree.root.value  # the tree is not used any more: its data becomes the expectation
    foreign: set[int] = set()
    for path, value in changes:
        expected = _apply_data(expected, path, value, foreign)
    _verify(result, expected, changes, batch.edits, batch.grown)
    return result
