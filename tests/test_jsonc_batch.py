"""modify_many plans a batch in one read of the text and means what its changes mean in order."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import syncd.jsonc.edit as edit
import syncd.jsonc.spans as spans
from syncd.errors import PatchError
from syncd.jsonc import REMOVE, JsoncError, modify, modify_many, parse
from syncd.jsonc.spans import span_tree

KEYS = st.sampled_from(["a", "b", "c", "m"])
SCALARS = st.one_of(st.integers(-3, 3), st.booleans(), st.none(), st.text("xy/", max_size=2))


def values(depth: int = 0) -> st.SearchStrategy[Any]:
    if depth >= 2:
        return SCALARS
    inner = st.deferred(lambda: values(depth + 1))
    return st.one_of(SCALARS, st.dictionaries(KEYS, inner, max_size=3), st.lists(inner, max_size=3))


def sequential(data: Any, changes: list[tuple[list[Any], Any]]) -> Any:
    """The meaning of a batch: each change applied to the data left by the one before."""
    data = copy.deepcopy(data)
    for path, value in changes:
        if not path:
            data = copy.deepcopy(value)
            continue
        cur = data
        for seg in path[:-1]:
            if isinstance(cur, dict) and seg not in cur:
                if value is REMOVE:
                    break
                cur[seg] = {}
            cur = cur[seg]
        else:
            last = path[-1]
            if value is REMOVE:
                if isinstance(cur, dict):
                    cur.pop(last, None)
                else:
                    del cur[last]
            elif isinstance(cur, list) and last == len(cur):
                cur.append(copy.deepcopy(value))
            else:
                cur[last] = copy.deepcopy(value)
    return data


def possible(data: Any, path: list[Any], value: Any) -> bool:
    cur = data
    for i, seg in enumerate(path):
        last = i == len(path) - 1
        if isinstance(cur, dict):
            if not isinstance(seg, str):
                return False
            if seg not in cur:
                return value is REMOVE or True
            cur = cur[seg]
        elif isinstance(cur, list):
            limit = len(cur) + (1 if last and value is not REMOVE else 0)
            if not isinstance(seg, int) or not 0 <= seg < limit:
                return False
            if seg == len(cur):
                return True
            cur = cur[seg]
        else:
            return False
    return True


@st.composite
def batches(draw: Any) -> tuple[str, list[tuple[list[Any], Any]]]:
    doc = draw(st.dictionaries(KEYS, values(), min_size=1, max_size=4))
    text = modify('{\n  // kept\n  "z": 0\n}\n', ["z"], REMOVE)
    for k, v in doc.items():
        text = modify(text, [k], v)
    data = parse(text)
    changes: list[tuple[list[Any], Any]] = []
    for _ in range(draw(st.integers(1, 6))):
        path: list[Any] = []
        cur = data
        while draw(st.booleans()) or not path:
            if isinstance(cur, dict):
                seg: Any = draw(st.one_of(st.sampled_from(sorted(cur)) if cur else KEYS, KEYS))
            elif isinstance(cur, list):
                seg = draw(st.integers(0, len(cur)))
            else:
                break
            path.append(seg)
            if isinstance(cur, dict) and seg in cur or isinstance(cur, list) and seg < len(cur):
                cur = cur[seg]
            else:
                break
        value = draw(st.one_of(st.just(REMOVE), values(1)))
        if not possible(data, path, value):
            continue
        changes.append((path, value))
        data = sequential(data, [(path, value)])
    return text, changes


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches())
def test_a_batch_means_what_its_changes_mean_one_after_another(case: Any) -> None:
    text, changes = case
    before = copy.deepcopy(changes)
    result = modify_many(text, changes)
    assert parse(result) == sequential(parse(text), changes)
    assert "// kept" in result
    assert changes == before  # the caller's values are never edited in place


def _count_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    reads: list[str] = []
    real = edit.span_tree

    def counting(text: str, *args: Any, **kwargs: Any) -> Any:
        reads.append(text)
        return real(text, *args, **kwargs)

    monkeypatch.setattr(edit, "span_tree", counting)
    return reads


def test_overlapping_changes_are_planned_in_one_read_of_the_text(monkeypatch: pytest.MonkeyPatch) -> None:
    reads = _count_reads(monkeypatch)
    text = '{\n  "p": {\n    "a": 1\n  },\n  "l": [1, 2, 3]\n}\n'
    changes: list[tuple[list[Any], Any]] = [
        (["p", "a"], 5), (["p"], REMOVE), (["p"], {"z": 1}), (["p", "y"], 2),
        (["l", 0], REMOVE), (["l", 0], REMOVE), (["l", 1], 7), (["l", 2], 8), (["l", 3, ], {"k": 1}),
        (["l", 3, "k"], 2),
    ]
    out = modify_many(text, changes)
    assert parse(out) == {"p": {"z": 1, "y": 2}, "l": [3, 7, 8, {"k": 2}]}
    assert reads == [text]  # one read of the original; no change is redone on its own


def test_an_edit_reads_only_the_containers_on_its_path() -> None:
    text = ('{\n  "provider": {\n    "a": {"models": {"x": {"name": "X"}}},\n'
            '    "b": {"models": {"y": {"name": "Y"}}}\n  }\n}\n')
    tree = span_tree(text, [("provider", "a", "models", "new")])
    provider = tree.root.entries[0].node
    a, b = (e.node for e in provider.entries)
    models_a = a.entries[0].node
    assert b._entries is None  # decoded whole, entries never read
    assert models_a.entries[0].node._entries is None
    assert b.value == {"models": {"y": {"name": "Y"}}}  # its data is there all the same
    assert b.entries[0].key == "models"  # and its entries can still be read when asked for


@pytest.mark.parametrize("count", [4_000, 16_000])
def test_a_run_of_unterminated_comments_is_reported_at_the_first(count: int) -> None:
    text = '{\n  "a": 1,\n' + "  /* open\n" * count + "}\n"
    with pytest.raises(JsoncError) as err:
        parse(text)
    assert (err.value.line, err.value.col, err.value.msg) == (3, 3, "unterminated /* comment")
    with pytest.raises(JsoncError):
        modify(text, ["b"], 1)


def test_a_duplicate_key_anywhere_in_the_input_is_refused_by_modify() -> None:
    text = '{\n  "p": {"x": {"k": 1, "k": 2}},\n  "q": 1\n}\n'
    with pytest.raises(JsoncError, match="duplicate key"):
        modify(text, ["q"], 2)


def test_verification_refuses_an_edit_that_would_repeat_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    real = edit.apply_edits

    def also_repeat(text: str, edits: list[Any]) -> str:
        out = real(text, edits)
        return out.replace('"b": 2', '"b": 2,\n  "a": 1', 1)

    monkeypatch.setattr(edit, "apply_edits", also_repeat)
    with pytest.raises(PatchError, match="does not parse"):
        modify('{\n  "a": 1\n}\n', ["b"], 2)


def test_verification_sees_a_number_that_changed_type(monkeypatch: pytest.MonkeyPatch) -> None:
    real = edit.apply_edits
    # same length, so only the value can tell: 1e2 reads as 100.0, equal to 100 but not the same
    monkeypatch.setattr(edit, "apply_edits", lambda t, e: real(t, e).replace('"b": 100', '"b": 1e2'))
    with pytest.raises(PatchError, match="intended data"):
        modify('{\n  "a": 1\n}\n', ["b"], 100)


def test_verification_refuses_an_object_that_grew_more_than_its_edits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = edit.apply_edits
    monkeypatch.setattr(edit, "apply_edits", lambda t, e: real(t, e).replace('"b": 2', '"b": 2, "c": 3'))
    with pytest.raises(PatchError):
        modify('{\n  "a": 1\n}\n', ["b"], 2)


def test_a_text_the_fast_reader_cannot_judge_goes_to_the_full_parser() -> None:
    assert spans.clean('{"a": 1 / 2}') is None
    with pytest.raises(JsoncError, match="expected"):
        modify('{"a": 1 / 2}', ["b"], 1)
