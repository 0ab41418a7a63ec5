"""The streaming JSON reader reads exactly what json.loads reads, in any chunking, within its limits."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.errors import BadResponse
from syncd.providers.jsonstream import JsonStream, estimate, footprint

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
values = st.recursive(scalars, lambda kids: st.lists(kids, max_size=5)
                      | st.dictionaries(st.text(max_size=5), kids, max_size=5), max_leaves=30)
documents = (values | st.fixed_dictionaries({"data": st.lists(values, max_size=8)}, optional={
    "models": st.lists(values, max_size=8), "has_more": st.booleans(), "last_id": st.text()}))


def read(text: str, cuts: list[int], **limits: int) -> Any:
    reader = JsonStream(max_items=limits.get("max_items", 5000), budget=limits.get("budget", 1 << 30))
    start = 0
    for cut in sorted(c % (len(text) + 1) for c in cuts):
        reader.feed(text[start:cut])
        start = max(start, cut)
    reader.feed(text[start:])
    return reader.finish()


@settings(max_examples=300, deadline=None)
@given(documents, st.lists(st.integers(min_value=0), max_size=12), st.sampled_from(["", " ", "\n  "]))
def test_any_document_in_any_pieces_reads_as_json_loads_reads_it(doc: Any, cuts: list[int],
                                                                  space: str) -> None:
    text = json.dumps(doc, indent=2 if space else None, ensure_ascii=bool(cuts) and cuts[0] % 2 == 0)
    assert read(space + text + space, cuts) == json.loads(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40), st.lists(st.integers(min_value=0), max_size=6))
def test_text_json_loads_refuses_is_refused(text: str, cuts: list[int]) -> None:
    text = text.lstrip("\ufeff")  # a byte order mark is skipped on purpose (json.loads refuses it)
    try:
        expected = json.loads(text)
    except ValueError:
        with pytest.raises(BadResponse):
            read(text, cuts)
    else:
        assert json.dumps(read(text, cuts)) == json.dumps(expected)  # NaN is not equal to itself


@pytest.mark.parametrize("text", ['{"data":[1,2,3]', "[1,", '{"a":', '"open', "tru", ""])
def test_a_cut_off_answer_is_an_error(text: str) -> None:
    with pytest.raises(BadResponse, match="truncated|empty"):
        read(text, [1, 3])


def test_numbers_split_across_pieces_are_whole() -> None:
    assert read('{"data":[123456,1.5e10,-7]}', [10, 11, 12, 13, 19, 20, 24]) == {
        "data": [123456, 1.5e10, -7]}


def test_model_lists_stop_at_their_limit_but_other_lists_do_not() -> None:
    with pytest.raises(BadResponse, match="more than 3 models"):
        read(json.dumps({"models": [{}] * 4}), [], max_items=3)
    with pytest.raises(BadResponse, match="more than 3 models"):
        read(json.dumps([{}] * 4), [], max_items=3)
    assert read(json.dumps({"tensors": [{}] * 4}), [], max_items=3) == {"tensors": [{}] * 4}


def test_the_budget_refuses_what_would_not_fit() -> None:
    text = json.dumps({"data": [{"id": "a", "junk": [{}] * 100_000}]})
    with pytest.raises(BadResponse, match="MiB of memory"):
        read(text, [70_000], budget=1 << 20)
    assert read(text, [70_000], budget=64 << 20)["data"][0]["id"] == "a"


def test_keys_repeated_across_items_are_one_object() -> None:
    doc = read(json.dumps({"data": [{"context_length": i} for i in range(3)]}), [20, 40])
    first, second = (next(iter(item)) for item in doc["data"][:2])
    assert first is second


@settings(max_examples=200, deadline=None)
@given(values)
def test_the_estimate_bounds_what_a_value_holds(value: Any) -> None:
    text = json.dumps(value)
    assert footprint(json.loads(text)) <= estimate(text, 0, len(text))
