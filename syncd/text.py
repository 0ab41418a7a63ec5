"""The one sanitizer for text from outside (model IDs, names, error texts): refused in IDs, escaped to show.

A character is unsafe when Unicode calls it a control (Cc: C0, DEL, C1 such as U+009B CSI and
U+0085), a format character (Cf: bidi overrides such as U+202E, zero-width characters, the BOM),
a lone surrogate (Cs: it cannot even be written as UTF-8) or a line or paragraph separator (Zl,
Zp). In a terminal they move the cursor, recolour, reorder or hide text; in a config they make
an ID read as another. Categories come from the running Python's Unicode database.
"""

from __future__ import annotations

import re
import unicodedata

MAX_ID_LEN = 256
_UNSAFE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_ASCII_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")
_WHAT = {"Cc": "a control character", "Cf": "an invisible or bidi format character",
         "Cs": "a lone surrogate", "Zl": "a line separator", "Zp": "a paragraph separator"}


def is_unsafe(char: str) -> bool:
    return unicodedata.category(char) in _UNSAFE


def first_unsafe(text: str) -> str | None:
    """The first unsafe character of `text`, or None."""
    if text.isascii():
        match = _ASCII_UNSAFE.search(text)
        return match.group() if match else None
    return next((c for c in text if unicodedata.category(c) in _UNSAFE), None)


def id_problem(value: str) -> str | None:
    """Why a model ID or name must not reach a config file (DESIGN §4.6), or None when it may."""
    if not value:
        return "empty"
    if len(value) > MAX_ID_LEN:
        return f"longer than {MAX_ID_LEN} characters"
    if "{env:" in value or "{file:" in value:
        return "contains an OpenCode {env:}/{file:} substitution"
    char = first_unsafe(value)
    if char is not None:
        return f"contains {_WHAT[unicodedata.category(char)]} ({codepoint(char)})"
    return None


def codepoint(char: str) -> str:
    return f"U+{ord(char):04X}"


_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(char: str) -> str:
    if char in _SHORT:
        return _SHORT[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def escape(text: str, limit: int | None = None, *, keep: str = "") -> str:
    """`text` with every unsafe character (except those in `keep`) written as `\\xNN`/`\\uNNNN`,
    cut to `limit` characters with an ellipsis."""
    if first_unsafe(text) is not None:
        text = "".join(_escaped(c) if c not in keep and is_unsafe(c) else c for c in text)
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def one_line(text: str, limit: int | None = None) -> str:
    """Display text on one line: runs of whitespace (newlines included) become one space, the
    rest of the unsafe characters are escaped."""
    return escape(" ".join(text.split()), limit)


def json_safe(text: str) -> str:
    """JSON text with its unsafe characters as `\\uXXXX` escapes: still the same JSON, but inert
    in a terminal. Unsafe characters only ever occur inside JSON strings, where the escape is valid."""
    if first_unsafe(text) is None:
        return text
    out = []
    for char in text:
        if char not in "\n" and is_unsafe(char):
            code = ord(char)
            if code >= 0x10000:  # JSON spells these as a surrogate pair
                code -= 0x10000
                out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
            else:
                out.append(f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)
