"""Parse JSONC exactly as OpenCode accepts it, into plain data or into a tree of spans for editing."""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any, Protocol

from syncd.errors import SyncdError
from syncd.jsonc.clean import BOM, clean


@cache
def _token_re() -> re.Pattern[str]:
    """Compiled on first use: the C decoder reads every valid text, so most runs never need it.

    Trivia (whitespace and comments) is consumed in front of every token, so the parser only
    ever sees significant tokens; the editor re-reads trivia locally from the text when needed.
    """
    return re.compile(
        r"""(?:[ \t\n\r]+|//[^\n\r]*|/\*.*?\*/)*
        (?:
          ([{}\[\]:,])                                                   # 1 punctuation
        | ("(?:[^"\\\x00-\x1f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*")      # 2 string
        | (-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)          # 3 number
        | (true|false|null)(?![A-Za-z0-9_$])                             # 4 keyword
        | (/\*)                                                          # 5 unterminated comment
        | (.)                                                            # 6 anything else
        | \Z                                                             # end of text
        )""",
        re.S | re.X,
    )


_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_KEYWORDS: dict[str, Any] = {"true": True, "false": False, "null": None}
_EOF = 0
_PUNCT, _STR, _NUM, _KW, _OPEN_COMMENT, _BAD = 1, 2, 3, 4, 5, 6


class JsoncError(SyncdError):
    """Text that is not valid JSONC; `line` and `col` are 1-based and point at the offending token."""

    def __init__(self, line: int, col: int, msg: str, offset: int = 0) -> None:
        super().__init__(f"{line}:{col}: {msg}")
        self.line = line
        self.col = col
        self.msg = msg
        self.offset = offset


def position(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of `offset`; CRLF, CR and LF each end a line; a BOM takes no column."""
    line, start = 1, 0
    for m in _LINE_BREAK.finditer(text, 0, offset):
        line, start = line + 1, m.end()
    col = offset - start + 1
    if line == 1 and text.startswith(BOM) and offset > 0:
        col -= 1
    return line, col


def _error(text: str, offset: int, msg: str) -> JsoncError:
    line, col = position(text, offset)
    return JsoncError(line, col, msg, offset)


class Node:
    """A value with its span [start, end); containers keep their entries, scalars their value.

    A container from `syncd.jsonc.spans` may leave its entries unread until first asked for
    (`source` reads them then); the parser below fills them in as it goes.
    """

    __slots__ = ("kind", "start", "end", "_entries", "_index", "value", "source")

    def __init__(self, kind: str, start: int, source: Expander | None = None) -> None:
        self.kind = kind  # "object", "array" or "scalar"
        self.start = start
        self.end = start
        self._entries: list[Entry] | None = [] if source is None or kind == "scalar" else None
        self._index: dict[str, int] = {}
        self.value: Any = None
        self.source = source

    def _read(self) -> list[Entry]:
        if self._entries is None:
            assert self.source is not None
            self.source.expand(self)
            assert self._entries is not None
        return self._entries

    @property
    def entries(self) -> list[Entry]:
        return self._read()

    @property
    def index(self) -> dict[str, int]:
        """Position of each key among the entries (objects)."""
        self._read()
        return self._index

    def fill(self, entries: list[Entry], index: dict[str, int]) -> None:
        self._entries = entries
        self._index = index


class Expander(Protocol):
    """Reads a container's entries on demand."""

    def expand(self, node: Node) -> None: ...


class Entry:
    """One object member or array element: `start` is the key's (or element's) start, `comma` the
    offset of the comma that follows it, or -1."""

    __slots__ = ("key", "start", "node", "comma")

    def __init__(self, key: str | None, start: int, node: Node) -> None:
        self.key = key
        self.start = start
        self.node = node
        self.comma = -1

    @property
    def end(self) -> int:
        return self.node.end


def _describe(text: str, kind: int, start: int, end: int) -> str:
    if kind == _EOF:
        return "end of text"
    tok = text[start:end]
    if len(tok) > 20:
        tok = tok[:17] + "..."
    return repr(tok)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks: list[tuple[int, int, int]] = []
        start = 1 if text.startswith(BOM) else 0
        for m in _token_re().finditer(text, start):
            k = m.lastindex or _EOF
            self.toks.append((k, m.start(k) if k else m.start(), m.end()))
            if k in (_EOF, _OPEN_COMMENT, _BAD):
                break
        self.i = 0

    def fail(self, tok: tuple[int, int, int], expected: str) -> JsoncError:
        kind, start, end = tok
        text = self.text
        if kind == _OPEN_COMMENT:
            return _error(text, start, "unterminated /* comment")
        if kind == _BAD and text[start] == '"':
            return _error(text, start, "unterminated string, or a control character or bad escape in it")
        if kind == _BAD and text[start] == "'":
            return _error(text, start, f"expected {expected}, found ' (single quotes are not JSON)")
        return _error(text, start, f"expected {expected}, found {_describe(text, kind, start, end)}")

    def document(self) -> Node:
        if self.toks[0][0] == _EOF:
            raise _error(self.text, self.toks[0][1], "empty document: expected a value")
        node = self.value()
        tok = self.toks[self.i]
        if tok[0] != _EOF:
            raise self.fail(tok, "end of text after the document's value")
        return node

    def value(self) -> Node:
        tok = self.toks[self.i]
        kind, start, end = tok
        text = self.text
        if kind == _PUNCT:
            ch = text[start]
            if ch == "{":
                return self.obj(start)
            if ch == "[":
                return self.arr(start)
            raise self.fail(tok, "a value")
        node = Node("scalar", start)
        node.end = end
        if kind == _STR:
            raw = text[start + 1 : end - 1]
            node.value = json.loads(text[start:end]) if "\\" in raw else raw
        elif kind == _NUM:
            raw = text[start:end]
            try:
                node.value = float(raw) if ("." in raw or "e" in raw or "E" in raw) else int(raw)
            except ValueError as exc:  # more digits than Python's int limit
                raise _error(text, start, f"number too long: {exc}") from None
        elif kind == _KW:
            node.value = _KEYWORDS[text[start:end]]
        else:
            raise self.fail(tok, "a value")
        self.i += 1
        return node

    def obj(self, start: int) -> Node:
        node = Node("object", start)
        entries, index = node.entries, node.index
        data: dict[str, Any] = {}
        toks, text = self.toks, self.text
        self.i += 1
        while True:
            tok = toks[self.i]
            kind, ks, ke = tok
            if kind == _PUNCT and text[ks] == "}":
                break
            if kind != _STR:
                raise self.fail(tok, "a string key or '}'")
            raw = text[ks + 1 : ke - 1]
            key = json.loads(text[ks:ke]) if "\\" in raw else raw
            if key in data:
                raise _error(text, ks, f"duplicate key {text[ks:ke]} in one object")
            self.i += 1
            tok = toks[self.i]
            if tok[0] != _PUNCT or text[tok[1]] != ":":
                raise self.fail(tok, f"':' after the key {text[ks:ke]}")
            self.i += 1
            child = self.value()
            entry = Entry(key, ks, child)
            index[key] = len(entries)
            entries.append(entry)
            data[key] = child.value
            tok = toks[self.i]
            if tok[0] == _PUNCT and text[tok[1]] == ",":
                entry.comma = tok[1]
                self.i += 1
            elif tok[0] == _PUNCT and text[tok[1]] == "}":
                break
            else:
                raise self.fail(tok, "',' or '}' after an object member")
        node.end = toks[self.i][2]
        node.value = data
        self.i += 1
        return node

    def arr(self, start: int) -> Node:
        node = Node("array", start)
        entries = node.entries
        data: list[Any] = []
        toks, text = self.toks, self.text
        self.i += 1
        while True:
            tok = toks[self.i]
            if tok[0] == _PUNCT and text[tok[1]] == "]":
                break
            child = self.value()
            entry = Entry(None, child.start, child)
            entries.append(entry)
            data.append(child.value)
            tok = toks[self.i]
            if tok[0] == _PUNCT and text[tok[1]] == ",":
                entry.comma = tok[1]
                self.i += 1
            elif tok[0] == _PUNCT and text[tok[1]] == "]":
                break
            else:
                raise self.fail(tok, "',' or ']' after an array element")
        node.end = toks[self.i][2]
        node.value = data
        self.i += 1
        return node


def parse_tree(text: str) -> Node:
    """The document's root node with spans (absolute offsets into `text`, BOM included)."""
    try:
        with paused_gc():
            return _Parser(text).document()
    except RecursionError:
        raise JsoncError(1, 1, "nesting too deep") from None


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d = dict(pairs)
    if len(d) != len(pairs):
        raise ValueError("duplicate key")
    return d


# Duplicate keys and NaN/Infinity are not JSONC; anything the decoder rejects goes to _Parser,
# which is the authority and words the error.
DECODER = json.JSONDecoder(object_pairs_hook=_unique, parse_constant=_no_constants)
# For a patched text, where a key can only repeat in the objects that got new keys (checked
# apart): the duplicate check is a Python call per object, a third of the decoding time.
TRUSTED_DECODER = json.JSONDecoder(parse_constant=_no_constants)


@contextmanager
def paused_gc() -> Iterator[None]:
    """Decoding builds containers that hold no cycles, so the cycle collector has nothing to find
    in them; left on, it walks every object built so far again and again (a third of the time of
    a 10 MB file). Nested and threaded use are safe: it only ever delays a collection."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def parse(text: str) -> Any:
    """The data of a JSONC document: dicts in file order, lists, str, int, float, bool, None.

    Fast path: the same-length JSON of the text (comments and trailing commas blanked) through the
    C decoder; a text it rejects is parsed again by _Parser for the error. Linear either way.
    """
    plain = clean(text)
    if plain is not None:
        try:
            with paused_gc():
                return DECODER.decode(plain.json)
        except (ValueError, RecursionError):
            pass
    return parse_tree(text).value
