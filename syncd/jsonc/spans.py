"""A span tree that reads only the containers an edit walks through; the C decoder skips the rest.

`span_tree(text, paths)` costs one pass of the C JSON decoder over the same-length JSON of the text
(`clean`) plus Python work for the entries of the containers on `paths`; every other value is
decoded as a whole and keeps its span and data, its entries read only if someone asks for them.
Text the fast route cannot judge goes to the full parser, which is the authority on errors.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence

from syncd.jsonc.clean import BOM, TRIVIA, clean, skip_trivia
from syncd.jsonc.parser import DECODER, Entry, Node, parse_tree, paused_gc

Trie = dict[str | int, "Trie"]


# A key (group 1: its text between the quotes; no control characters), the colon, and the trivia
# around it; and what may follow a value: trivia, a comma (group 1) and trivia.
_KEY = re.compile(rf'"((?:[^"\\\x00-\x1f]++|\\.)*+)"{TRIVIA}:{TRIVIA}')
_AFTER = re.compile(rf"{TRIVIA}(?:(,){TRIVIA})?")


class _Unsure(Exception):
    """The fast route met something it does not judge; the full parser takes over."""


def _trie(paths: Iterable[Sequence[str | int]]) -> Trie:
    root: Trie = {}
    for path in paths:
        cur = root
        for seg in path:
            if isinstance(seg, bool) or not isinstance(seg, str | int):
                break  # an impossible segment: the editor reports it
            cur = cur.setdefault(seg, {})
    return root


class SpanTree:
    """The root of a document, how it was read, and whether it ends any container with a comma."""

    def __init__(self, root: Node, trailing_commas: bool | None) -> None:
        self.root = root
        self.trailing_commas = trailing_commas  # None: not known (the full parser read the text)


class _Reader:
    """Reads containers of one text, against the same-length JSON of it."""

    def __init__(self, text: str, plain: str) -> None:
        self.text = text
        self.plain = plain

    def expand(self, node: Node) -> None:
        """Entries of a container that was skipped when the tree was built (asked for later)."""
        try:
            self.read(node, None)
        except (_Unsure, ValueError, IndexError, RecursionError):
            parse_tree(self.text)  # raises the precise error; a valid text cannot get here
            raise AssertionError("span reader and parser disagree") from None

    def value_at(self, start: int, trie: Trie | None) -> Node:
        text = self.text
        ch = text[start]
        if trie is not None and ch in "{[":
            node = Node("object" if ch == "{" else "array", start, self)
            self.read(node, trie)
            return node
        value, end = DECODER.raw_decode(self.plain, start)
        node = Node("object" if ch == "{" else "array" if ch == "[" else "scalar", start, self)
        node.end, node.value = end, value
        return node

    def read(self, node: Node, trie: Trie | None) -> None:
        """Read the entries of `node`; expand the children `trie` names, decode the others whole."""
        text = self.text
        is_obj = node.kind == "object"
        close = "}" if is_obj else "]"
        entries: list[Entry] = []
        index: dict[str, int] = {}
        pos = skip_trivia(text, node.start + 1)
        key_at, after = _KEY.match, _AFTER.match
        while text[pos] != close:
            key: str | None = None
            if is_obj:
                m = key_at(text, pos)
                if m is None:
                    raise _Unsure
                key = m.group(1)
                if "\\" in key:
                    key = json.loads(text[pos : m.end(1) + 1])
                if key in index:
                    raise _Unsure
                vstart = m.end()
                index[key] = len(entries)
                sub = trie.get(key) if trie is not None else None
            else:
                vstart = pos
                sub = trie.get(len(entries)) if trie is not None else None
            entry = Entry(key, pos, self.value_at(vstart, sub))
            entries.append(entry)
            m = after(text, entry.node.end)
            pos = m.end()  # type: ignore[union-attr]  # it matches the empty string
            comma = m.start(1)  # type: ignore[union-attr]
            if comma >= 0:
                entry.comma = comma
            elif text[pos] != close:
                raise _Unsure
        node.end = pos + 1
        node.fill(entries, index)
        if node.value is None:
            if is_obj:
                node.value = {e.key: e.node.value for e in entries}
            else:
                node.value = [e.node.value for e in entries]


def span_tree(text: str, paths: Iterable[Sequence[str | int]] = ()) -> SpanTree:
    """The span tree of `text`, read in full along `paths`; JsoncError when it is not JSONC."""
    plain = clean(text)
    if plain is not None:
        reader = _Reader(text, plain.json)
        try:
            start = skip_trivia(text, 1 if text.startswith(BOM) else 0)
            with paused_gc():
                root = reader.value_at(start, _trie(paths))
            if skip_trivia(text, root.end) == len(text):
                return SpanTree(root, plain.trailing_commas)
        except (_Unsure, ValueError, IndexError, RecursionError):
            pass
    return SpanTree(parse_tree(text), None)

