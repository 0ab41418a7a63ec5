"""Reads a JSON answer as it arrives, within a memory budget, stopping once a model list passes its limit.

`json.loads` on a 32 MiB answer of `[{},{},…]` builds 16 million objects (1.3 GB) before anyone
can count them. This reader walks the top of the document itself: a bare list, or the members of
a top-level object, where `data` and `models` lists are read one item at a time and refused the
moment they hold more than `max_items`. Each value it builds (an item, a member) is decoded in
one piece by the C scanner of the `json` module: a short one at once (it cannot take more than a
few MB), a long one only after `estimate()` has shown it fits what is left of the budget. What
every built value really takes (`footprint()`) is charged to `budget`. Pure: text in, values out.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from json.decoder import scanstring  # type: ignore[attr-defined]  # C-accelerated, not in typeshed
from typing import Any

from syncd.errors import BadResponse

LIST_KEYS = frozenset({"data", "models"})
# A value whose text is at most this long is decoded without a look first: it cannot take more
# than estimate() of that many characters (2.5 MB), and model list items are far smaller.
SMALL = 64 * 1024
# No value of a provider's answer is near this long (a model list item is a few KB, a catalog
# provider a few hundred); waiting for a longer one would only grow the buffer.
MAX_VALUE = 4 * 1024 * 1024
_NUMBER = frozenset("0123456789+-.eE")
_WS_RE = re.compile(r"[ \t\n\r]*")


def estimate(text: str, start: int, end: int) -> int:
    """An upper bound of the bytes CPython takes to hold the JSON value in `text[start:end]`.

    Weights are each token's worst case, measured with tracemalloc on CPython 3.11
    (bench/hostile_bench.py prints real / estimated memory per hostile shape): a dict with its
    first key table, a list with its first slots, a dict slot at a resize, a string's header, a
    list slot, and 4 bytes per character (a string of non-ASCII characters).
    """
    count = text.count
    return (192 * count("{", start, end) + 96 * count("[", start, end)
            + 48 * count(":", start, end) + 16 * count(",", start, end)
            + 40 * count('"', start, end) + 5 * (end - start) + 64)


def footprint(value: Any) -> int:
    """The bytes a decoded JSON value holds (keys are not counted here: they are shared)."""
    size = sys.getsizeof
    total, todo = 0, [value]
    while todo:
        item = todo.pop()
        total += size(item)
        kind = type(item)
        if kind is dict:
            todo += item.values()
        elif kind is list:
            todo += item
    return total


def too_many(count: int | None, limit: int) -> str:
    """The one wording of "this list is over the model limit"; `count` None: reading stopped there."""
    served = f"{count} models" if count is not None else f"more than {limit} models"
    return (f"served {served}, over the limit of {limit}; "
            "narrow it with include/exclude or raise max_models")


class _Need(Exception):
    """The value under the cursor is not complete yet: wait for more text."""


class JsonStream:
    """Feed text with `feed()`, then `finish()` returns the document (or raises BadResponse)."""

    def __init__(self, *, max_items: int, budget: int) -> None:
        self._max_items = max_items
        self._budget = budget
        self._spent = 0
        self._buf = ""
        self._pos = 0
        self._dropped = 0  # characters before the buffer, for positions in messages
        self._closed = False
        self._wait = 0  # retry a pending value only once this many characters are buffered
        keys: dict[str, str] = {}

        def shared_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
            # each value is decoded on its own, so the scanner's key memo is not shared between
            # items: without this, 5,000 entries would hold 5,000 copies of every key
            out = {}
            for key, item in pairs:
                known = keys.get(key)
                if known is None:
                    known = keys[key] = key
                    self._spend(sys.getsizeof(key) + 48)
                out[known] = item
            return out

        self._decode = json.JSONDecoder(object_pairs_hook=shared_keys).raw_decode
        self._step: Callable[[], bool] = self._start
        self._doc: Any = None
        self._list: list[Any] | None = None  # the list being streamed
        self._in_object = False  # whether that list is a member of the top-level object
        self._first = True

    # -- driving -------------------------------------------------------------------------------

    def feed(self, text: str) -> None:
        """Take the next piece of the answer; raises BadResponse as soon as it can tell."""
        if self._pos:
            self._dropped += self._pos
            self._buf = self._buf[self._pos:] + text
            self._pos = 0
        else:
            self._buf += text
        self._run()

    def finish(self) -> Any:
        """The whole document: every byte has been fed."""
        self._closed = True
        self._wait = 0
        self._run()
        return self._doc

    def _run(self) -> None:
        try:
            while self._step():
                pass
        except _Need:
            if self._closed and self._step == self._start:
                raise BadResponse("answered with an empty body") from None
            if self._closed:
                raise BadResponse("answered with truncated or invalid JSON") from None

    # -- the grammar of the top (each step commits its position only when it is complete) -----

    def _skip(self, pos: int) -> int:
        """The position of the next character after whitespace; _Need when there is none yet."""
        match = _WS_RE.match(self._buf, pos)
        assert match is not None  # the pattern matches the empty string
        if match.end() >= len(self._buf):
            if pos == self._pos:  # whitespace can go: a body of blanks never piles up
                self._pos = match.end()
            raise _Need
        return match.end()

    def _start(self) -> bool:
        pos = 1 if self._dropped == 0 and self._buf.startswith("\ufeff") else self._pos  # a BOM
        pos = self._skip(max(pos, self._pos))
        char = self._buf[pos]
        if char == "<":
            raise BadResponse("answered with an HTML page, not JSON; check the baseURL")
        if char == "[":
            self._pos = pos + 1
            self._doc = self._list = []
            self._first, self._step = True, self._item
        elif char == "{":
            self._pos = pos + 1
            self._doc = {}
            self._first, self._step = True, self._member
        else:
            self._doc = self._value(pos)
            self._step = self._end
        return True

    def _member(self) -> bool:
        pos = self._skip(self._pos)
        char = self._buf[pos]
        if char == "}" and self._first:
            self._pos = pos + 1
            self._step = self._end
            return True
        if char != '"':
            raise self._invalid("expected a member name", pos)
        try:
            key, end = scanstring(self._buf, pos + 1)
        except json.JSONDecodeError:
            if len(self._buf) - pos > SMALL:
                raise self._invalid("a member name longer than 256 KiB", pos) from None
            raise _Need from None
        pos = self._skip(end)
        if self._buf[pos] != ":":
            raise self._invalid("expected ':'", pos)
        pos = self._skip(pos + 1)
        if key in LIST_KEYS and self._buf[pos] == "[":
            self._pos = pos + 1
            self._list = self._doc[key] = []
            self._in_object, self._first, self._step = True, True, self._item
        else:
            self._doc[key] = self._value(pos)
            self._step = self._after_member
        return True

    def _after_member(self) -> bool:
        return self._after("}", self._member, None)

    def _item(self) -> bool:
        assert self._list is not None
        pos = self._skip(self._pos)
        if self._buf[pos] == "]" and self._first:
            self._pos = pos + 1
            self._close_list()
            return True
        self._list.append(self._value(pos))
        if len(self._list) > self._max_items:
            raise BadResponse(too_many(None, self._max_items))
        self._step = self._after_item
        return True

    def _after_item(self) -> bool:
        return self._after("]", self._item, self._close_list)

    def _after(self, closer: str, again: Callable[[], bool],
               done: Callable[[], bool] | None) -> bool:
        """After a member or an item: `,` goes on with `again`, `closer` ends with `done`."""
        pos = self._skip(self._pos)
        char = self._buf[pos]
        if char == closer:
            self._step = self._end
            if done is not None:
                done()
        elif char == ",":
            self._first, self._step = False, again
        else:
            raise self._invalid(f"expected ',' or '{closer}'", pos)
        self._pos = pos + 1
        return True

    def _close_list(self) -> bool:
        self._list = None
        self._step = self._after_member if self._in_object else self._end
        return True

    def _end(self) -> bool:
        try:
            pos = self._skip(self._pos)
        except _Need:
            return False
        raise self._invalid("extra data after the JSON value", pos)

    # -- one value, decoded by the C scanner within the budget --------------------------------

    def _value(self, pos: int) -> Any:
        """Decode the value at `pos`, charge what it holds, and commit the position after it."""
        buf = self._buf
        avail = len(buf) - pos
        if avail < self._wait and not self._closed:
            raise _Need
        try:
            value, end = self._bounded(buf, pos, avail)
        except json.JSONDecodeError as exc:
            if self._closed:
                raise BadResponse(f"answered with truncated or invalid JSON ({exc.msg.lower()}, "
                                  f"character {self._dropped + exc.pos})") from None
            self._wait = avail * 2  # retry once there is twice as much: linear, not quadratic
            raise _Need from None
        except RecursionError:
            raise BadResponse("answered with JSON nested too deeply to read") from None
        if (not self._closed and isinstance(value, int | float) and not isinstance(value, bool)
                and (end >= len(buf) or buf[end] in _NUMBER)):
            self._wait = avail + 1  # "1" may be the start of "1.5e3" still on its way
            raise _Need
        self._spend(footprint(value))
        self._pos, self._wait = end, 0
        return value

    def _bounded(self, buf: str, pos: int, avail: int) -> tuple[Any, int]:
        """Decode the value at `pos` without building more than the budget has left.

        A JSONDecodeError's position is absolute in `buf`.
        """
        if avail <= SMALL:
            return self._decode(buf, pos)
        try:
            value, end = self._decode(buf[pos:pos + SMALL])
            if end < SMALL:
                return value, pos + end
        except json.JSONDecodeError:
            pass  # the value is longer than SMALL: weigh what it may be before building it
        stop = min(len(buf), pos + MAX_VALUE)
        left = self._budget - self._spent
        if estimate(buf, pos, stop) > left:
            stop = self._affordable(buf, pos, stop, left)
        try:
            if stop == len(buf):  # the value cannot run past the buffer: no copy needed
                return self._decode(buf, pos)
            value, end = self._decode(buf[pos:stop])
        except json.JSONDecodeError as exc:
            if stop == len(buf):
                raise  # not complete yet, or invalid: the caller knows which
            at = pos + exc.pos
            if at < stop - 1 and not exc.msg.startswith("Unterminated"):
                raise json.JSONDecodeError(exc.msg, buf, at) from None
            if stop - pos >= MAX_VALUE:  # it goes on past the longest value syncd waits for
                raise BadResponse(f"answered with a value longer than {MAX_VALUE // 2**20} MiB "
                                  "(far more than any model entry); refused") from None
            raise BadResponse(self._over_budget()) from None  # it goes on past what fits
        return value, pos + end

    def _affordable(self, buf: str, pos: int, stop: int, left: int) -> int:
        """The largest end before `stop` whose text from `pos` is estimated within `left`."""
        low, high = pos, stop
        while low < high:
            mid = (low + high + 1) // 2
            if estimate(buf, pos, mid) <= left:
                low = mid
            else:
                high = mid - 1
        return low

    def _spend(self, amount: int) -> None:
        self._spent += amount
        if self._spent > self._budget:
            raise BadResponse(self._over_budget())

    def _over_budget(self) -> str:
        return (f"answer needs more than {self._budget // 2**20} MiB of memory to read "
                "(a list or value far larger than a model list); refused")

    def _invalid(self, what: str, at: int) -> BadResponse:
        return BadResponse(f"answered with invalid JSON ({what}, character {self._dropped + at})")
