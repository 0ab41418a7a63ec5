"""Property tests: random JSONC documents in random styles x random set/insert/remove operations."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncd.jsonc import REMOVE, modify, parse

KEYS = st.sampled_from(["a", "b", "c", "models", "name", "x y", "ünï", "q\"t"])
SCALARS = st.one_of(st.integers(-5, 10**6), st.booleans(), st.none(), st.text("ab é/*", max_size=4),
                    st.floats(allow_nan=False, allow_infinity=False, width=32))
TAG = re.compile(r"(?://|/\*) (c\d+)")


@dataclass
class Doc:
    eol: str
    unit: str
    trailing: bool
    counter: int = 0
    own_tags: dict[tuple[str, ...], set[str]] = field(default_factory=dict)


def subsequence(small: str, big: str) -> bool:
    """`big` is `small` with characters inserted (and nothing else changed)."""
    it = iter(big)
    return all(ch in it for ch in small)


def is_line_removal(before: str, after: str) -> bool:
    """`after` is `before` minus a run of whole lines plus at most one comma taken off another line;
    or, for a member that shares its line, minus characters of that one line only."""
    a, b = before.splitlines(keepends=True), after.splitlines(keepends=True)
    drop = len(a) - len(b)
    if drop == 0:
        diff = [(x, y) for x, y in zip(a, b, strict=True) if x != y]
        return len(diff) == 1 and subsequence(diff[0][1], diff[0][0])
    for i in range(len(a) - drop + 1):
        kept = a[:i] + a[i + drop :]
        diff = [(x, y) for x, y in zip(kept, b, strict=True) if x != y]
        if len(diff) <= 1 and all(
            len(x) == len(y) + 1 and x.count(",") == y.count(",") + 1 and subsequence(y, x) for x, y in diff
        ):
            return True
    return False


def tags(text: str) -> set[str]:
    return set(TAG.findall(text))


def trees(depth: int = 0) -> st.SearchStrategy[Any]:
    if depth >= 3:
        return SCALARS
    return st.one_of(SCALARS, st.dictionaries(KEYS, st.deferred(lambda: trees(depth + 1)), max_size=4))


def render(draw: Any, doc: Doc, value: Any, path: tuple[str, ...], ind: str) -> str:
    if not isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    if not value or draw(st.integers(0, 4)) == 0:
        if not value and draw(st.booleans()):
            return "{" + doc.eol + ind + "}"
        inner = ", ".join(f"{json.dumps(k, ensure_ascii=False)}: {json.dumps(v, ensure_ascii=False)}"
                          for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    inner_ind = ind + doc.unit
    lines = ["{"]
    items = list(value.items())
    for i, (k, v) in enumerate(items):
        sub = (*path, k)
        if draw(st.booleans()):
            doc.counter += 1
            lines.append(f"{inner_ind}// c{doc.counter} above")
        start = doc.counter
        body = render(draw, doc, v, sub, inner_ind)
        comma = "," if i < len(items) - 1 or doc.trailing else ""
        after = ""
        if draw(st.booleans()):
            doc.counter += 1
            after = f" // c{doc.counter} after" if draw(st.booleans()) else f" /* c{doc.counter} */"
        line = f"{inner_ind}{json.dumps(k, ensure_ascii=False)}: {body}{comma}{after}"
        lines.append(line)
        doc.own_tags[sub] = tags(line)
        assert all(int(t[1:]) > start for t in doc.own_tags[sub])
    lines.append(ind + "}")
    return doc.eol.join(lines)


@st.composite
def documents(draw: Any) -> tuple[str, Doc, dict[str, Any]]:
    data = draw(st.dictionaries(KEYS, trees(1), min_size=1, max_size=4))
    doc = Doc(eol=draw(st.sampled_from(["\n", "\r\n"])), unit=draw(st.sampled_from(["  ", "    ", "\t"])),
              trailing=draw(st.booleans()))
    text = render(draw, doc, data, (), "")
    if "\n" not in text:  # keep every document multi-line at the top
        text = "{" + doc.eol + doc.unit + text[1:-1].strip() + doc.eol + "}"
        doc.own_tags.clear()
    return text + doc.eol * draw(st.integers(0, 1)), doc, data


def object_paths(value: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [path] if isinstance(value, dict) else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += object_paths(v, (*path, k))
    return out


def get(value: Any, path: tuple[str, ...]) -> Any:
    for seg in path:
        value = value[seg]
    return value


def same_order(a: Any, b: Any) -> bool:
    return json.dumps(a, ensure_ascii=False) == json.dumps(b, ensure_ascii=False)


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(documents(), st.data())
def test_insert_only_adds_text_and_parses_to_the_expected_data(case: Any, data: Any) -> None:
    text, _doc, value = case
    where = data.draw(st.sampled_from(object_paths(value)))
    missing = data.draw(st.lists(st.sampled_from(["new", "n2", "Ω"]), min_size=1, max_size=3, unique=True))
    if missing[0] in get(value, where):
        return
    new = data.draw(st.one_of(SCALARS, st.dictionaries(KEYS, SCALARS, max_size=3)))
    result = modify(text, [*where, *missing], new)
    expected = copy.deepcopy(value)
    cur = get(expected, where)
    for seg in missing[:-1]:
        cur = cur.setdefault(seg, {})
    cur[missing[-1]] = new
    assert same_order(parse(result), expected)
    assert subsequence(text, result)
    assert tags(text) <= tags(result)


@SETTINGS
@given(documents(), st.data())
def test_remove_deletes_only_the_members_lines_and_one_comma(case: Any, data: Any) -> None:
    text, doc, value = case
    members = [p for p in object_paths(value) if p] + [(*p, k) for p in object_paths(value)
                                                       for k, v in get(value, p).items()
                                                       if not isinstance(v, dict)]
    if not members:
        return
    victim = data.draw(st.sampled_from(sorted(set(members))))
    result = modify(text, victim, REMOVE)
    expected = copy.deepcopy(value)
    del get(expected, victim[:-1])[victim[-1]]
    assert same_order(parse(result), expected)
    assert is_line_removal(text, result)
    lost = tags(text) - tags(result)
    own = set().union(*(t for p, t in doc.own_tags.items() if p[: len(victim)] == victim))
    assert lost <= own


@SETTINGS
@given(documents(), st.data())
def test_setting_an_existing_scalar_changes_only_its_own_line(case: Any, data: Any) -> None:
    text, _doc, value = case
    leaves = [(*p, k) for p in object_paths(value) for k, v in get(value, p).items()
              if not isinstance(v, dict)]
    if not leaves:
        return
    target = data.draw(st.sampled_from(leaves))
    new = data.draw(st.one_of(SCALARS, st.dictionaries(KEYS, SCALARS, max_size=2)))
    result = modify(text, target, new)
    expected = copy.deepcopy(value)
    get(expected, target[:-1])[target[-1]] = new
    assert same_order(parse(result), expected)
    assert tags(text) <= tags(result)
    before_lines, after_lines = text.splitlines(), result.splitlines()
    if "\n" not in json.dumps(new, indent=2):
        assert len(before_lines) == len(after_lines)
        assert sum(x != y for x, y in zip(before_lines, after_lines, strict=True)) <= 1
