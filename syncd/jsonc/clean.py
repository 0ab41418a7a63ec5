"""Turn JSONC into plain JSON of the same length (comments and trailing commas blanked) in one pass."""

from __future__ import annotations

import re
from dataclasses import dataclass

BOM = "\ufeff"

# A run of code and whole strings (one line each), then the comment that ends it, if any.
# Possessive quantifiers: nothing here ever gives characters back, so the C matcher keeps no
# backtracking state and a large file is one fast pass. An unterminated /* fails once, at its end.
_PIECE = re.compile(
    r'((?:[^"/]++|"(?:[^"\\\n\r]++|\\.)*+")*+)(//[^\r\n]*+|/\*(?:[^*]++|\*(?!/))*+\*/)?'
)
# Up to the next comma that only whitespace separates from a closing bracket, strings skipped.
_TO_TRAILING = re.compile(r'(?:[^",]++|"(?:[^"\\\n\r]++|\\.)*+"|,(?![ \t\r\n]*+[}\]]))*+')
_MAYBE_TRAILING = re.compile(r",[ \t\r\n]*+[}\]]")
# Whitespace and complete comments (for the editor, on text known to be valid).
TRIVIA = r"(?:[ \t\r\n]++|//[^\n\r]*+|/\*(?:[^*]++|\*(?!/))*+\*/)*+"
_TRIVIA = re.compile(TRIVIA)
_VALUE_END = frozenset('"0123456789el}]')
_WS = " \t\r\n"


@dataclass(frozen=True, slots=True)
class Clean:
    """`json`: the text with its BOM, comments and trailing commas replaced by spaces, so every
    offset still points at the same character; `trailing_commas`: the text ended a container so."""

    json: str
    trailing_commas: bool


def skip_trivia(text: str, pos: int) -> int:
    """The offset of the first character at or after `pos` that is not whitespace or a comment."""
    return _TRIVIA.match(text, pos).end()  # type: ignore[union-attr]  # it matches the empty string


def _blank_comments(text: str) -> str | None:
    n = len(text)
    start = 1 if text.startswith(BOM) else 0
    parts: list[str] = [" "] if start else []
    pos = start
    while True:
        m = _PIECE.match(text, pos)
        assert m is not None  # it matches the empty string
        code_end, end = m.end(1), m.end()
        parts.append(text[pos:code_end])
        if end == code_end:  # no comment: the end, or something only the full parser can judge
            return "".join(parts) if end == n else None
        parts.append(" " * (end - code_end))
        pos = end


def _blank_trailing_commas(plain: str) -> tuple[str, bool]:
    if not _MAYBE_TRAILING.search(plain):
        return plain, False
    n = len(plain)
    parts: list[str] = []
    pos, found = 0, False
    while True:
        end = _TO_TRAILING.match(plain, pos).end()  # type: ignore[union-attr]
        if end >= n or plain[end] != ",":  # the end, or a bad string: the decoder says so
            parts.append(plain[pos:])
            return "".join(parts), found
        # a comma right after '[', '{', ',' or ':' is an error the decoder must see
        before = plain[pos:end].rstrip(_WS)
        last = before[-1] if before else plain[pos - 1] if pos else ""
        parts.append(plain[pos:end])
        if last in _VALUE_END:
            parts.append(" ")
            found = True
        else:
            parts.append(",")
        pos = end + 1


def clean(text: str) -> Clean | None:
    """The same-length JSON for a JSONC `text`, or None when the text is not plain enough to say
    (a stray '/', an unterminated comment or string): then only the full parser can judge it.

    Linear: the C regex engine reads each character about twice; Python runs once per comment
    and once per trailing comma.
    """
    plain = _blank_comments(text)
    if plain is None:
        return None
    plain, trailing = _blank_trailing_commas(plain)
    return Clean(plain, trailing)
