"""Read a JSONC document's own style (line ending, indent unit, line layout) and render new text in it."""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from collections import Counter, deque
from typing import Any

from syncd.jsonc.parser import Node

_FIRST_BREAK = re.compile(r"\r\n|\r|\n")
_INDENT = re.compile(r"[ \t]*")
# spaces, tabs and block comments that stay on one line
_SAME_LINE = re.compile(r"(?:[ \t]+|/\*(?:[^*\r\n]|\*(?!/))*\*/)*")
_UNIT_SAMPLES = 64
_UNIT_VISITS = 512


class Layout:
    """Layout facts derived lazily from the original text; offsets are absolute."""

    def __init__(self, text: str, root: Node, trailing_commas: bool | None = None) -> None:
        self.text = text
        self.root = root
        m = _FIRST_BREAK.search(text)
        self.eol = m.group() if m else "\n"
        self.one_line = m is None
        self._unit: str | None = None
        self._trailing_commas = trailing_commas
        self._multiline: dict[int, bool] = {}
        self._line_starts: list[int] | None = None

    def line_start(self, pos: int) -> int:
        """Start of the line holding `pos` (a binary search: a one-line file costs no rescans)."""
        if self._line_starts is None:
            self._line_starts = [0, *(m.end() for m in _FIRST_BREAK.finditer(self.text))]
        starts = self._line_starts
        return starts[bisect_right(starts, pos) - 1]

    def indent_at(self, pos: int) -> str:
        start = self.line_start(pos)
        return _INDENT.match(self.text, start).group()  # type: ignore[union-attr]

    def first_on_line(self, pos: int) -> bool:
        start = self.line_start(pos)
        return _INDENT.match(self.text, start).end() == pos  # type: ignore[union-attr]

    def break_len(self, pos: int) -> int:
        return 2 if self.text.startswith("\r\n", pos) else 1

    def trailing(self, end: int) -> tuple[int, bool]:
        """After a value ending at `end`: skip same-line spaces, block comments, one comma and one
        line comment. Returns (offset of the line break, True) or (offset of the next token, False)."""
        t = self.text
        p = _SAME_LINE.match(t, end).end()  # type: ignore[union-attr]
        if t.startswith(",", p):
            p = _SAME_LINE.match(t, p + 1).end()  # type: ignore[union-attr]
        if t.startswith("//", p):
            m = _FIRST_BREAK.search(t, p)
            p = m.start() if m else len(t)
        return p, (p < len(t) and t[p] in "\r\n")

    def multiline(self, node: Node) -> bool:
        """Every entry starts its own line and keeps its comma on that line (empty: braces on two lines)."""
        cached = self._multiline.get(id(node))
        if cached is not None:
            return cached
        t = self.text
        if not node.entries:
            inside = t[node.start : node.end]
            result = "\n" in inside or "\r" in inside
        else:
            result = all(
                self.first_on_line(e.start)
                and (e.comma < 0 or not _FIRST_BREAK.search(t, e.node.end, e.comma))
                for e in node.entries
            )
        self._multiline[id(node)] = result
        return result

    def single_line_values(self, node: Node) -> bool:
        """Sibling values that are non-empty containers are all written on one line (and one exists)."""
        t, seen = self.text, 0
        for e in node.entries[:32]:
            v = e.node
            if v.kind != "scalar" and v.value:
                if _FIRST_BREAK.search(t, v.start, v.end):
                    return False
                seen += 1
        return seen > 0

    @property
    def unit(self) -> str:
        """The most common indent step between a container's line and its first entry's line.

        Breadth first from the root over at most _UNIT_VISITS containers, so a huge document of
        one-line entries costs no more than a small one.
        """
        if self._unit is None:
            counts: Counter[str] = Counter()
            todo, visits = deque([self.root]), 0
            while todo and visits < _UNIT_VISITS and sum(counts.values()) < _UNIT_SAMPLES:
                node = todo.popleft()
                if node.kind == "scalar" or not node.value:
                    continue
                visits += 1
                first = node.entries[0].start
                if self.first_on_line(first):
                    outer, inner = self.indent_at(node.start), self.indent_at(first)
                    if len(inner) > len(outer) and inner.startswith(outer):
                        counts[inner[len(outer) :]] += 1
                todo.extend(e.node for e in node.entries[:_UNIT_VISITS] if e.node.kind != "scalar")
            self._unit = counts.most_common(1)[0][0] if counts else "  "
        return self._unit

    @property
    def trailing_commas(self) -> bool:
        """Whether the file ends any object or array with a comma."""
        if self._trailing_commas is None:
            found, todo = False, [self.root]
            while todo and not found:
                node = todo.pop()
                if node.kind != "scalar" and node.value:
                    found = node.entries[-1].comma >= 0
                    todo.extend(e.node for e in node.entries)
            self._trailing_commas = found
        return self._trailing_commas

    def pad(self, node: Node) -> str:
        """Space used inside an inline object's braces: '{ "a": 1 }' vs '{"a": 1}'."""
        t = self.text
        return " " if node.start + 1 >= len(t) or t[node.start + 1] in " \t}]" else ""

    def value_pad(self, node: Node) -> str:
        """Padding the entries' inline object values use: '{ "name": "A" }' gives ' '."""
        for e in node.entries[:32]:
            v = e.node
            if v.kind == "object" and v.value:
                return " " if self.text[v.start + 1] in " \t" else ""
        return " " if self.text[self.root.start + 1 : self.root.start + 2] in (" ", "\t") else ""

    def render(self, value: Any, base: str, multiline: bool, pad: str = "") -> str:
        if multiline:
            return _dump(value, self.unit, "", self.trailing_commas).replace("\n", self.eol + base)
        return _inline(value, pad)


SHORT_ARRAY = 60  # a list of scalars up to this width stays on one line, as people write them


def _dump(value: Any, unit: str, indent: str, trailing: bool) -> str:
    """Like json.dumps(indent=unit), but short scalar lists stay inline and trailing commas follow
    the file's habit; lines are joined with "\n" for the caller to translate."""
    if isinstance(value, list) and value and not any(isinstance(v, dict | list) for v in value):
        flat = _inline(value, "")
        if len(flat) <= SHORT_ARRAY:
            return flat
    if isinstance(value, dict | list) and value:
        inner = indent + unit
        if isinstance(value, dict):
            items = [f"{render_key(k)}: {_dump(v, unit, inner, trailing)}" for k, v in value.items()]
        else:
            items = [_dump(v, unit, inner, trailing) for v in value]
        open_, close = ("{", "}") if isinstance(value, dict) else ("[", "]")
        body = ",\n".join(inner + item for item in items)
        return f"{open_}\n{body}{',' if trailing else ''}\n{indent}{close}"
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def _inline(value: Any, pad: str) -> str:
    if isinstance(value, dict) and value:
        inner = ", ".join(f"{render_key(k)}: {_inline(v, pad)}" for k, v in value.items())
        return "{" + pad + inner + pad + "}"
    if isinstance(value, list) and value:
        return "[" + ", ".join(_inline(v, pad) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def render_key(key: str) -> str:
    return json.dumps(key, ensure_ascii=False)
