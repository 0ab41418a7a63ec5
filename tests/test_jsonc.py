"""Unit tests for the JSONC grammar, its errors, and modify/modify_many rules."""

from __future__ import annotations

import pytest

from syncd.errors import PatchError
from syncd.jsonc import REMOVE, JsoncError, modify, modify_many, parse


@pytest.mark.parametrize("text", [
    "{'a': 1}", '{a: 1}', '[0x10]', '[+1]', '[Infinity]', '[NaN]', '[.5]', '[1.]', '{"a": 1,,}',
    '[,]', '{,}', '', '  // only a comment', '{"a": 1} {"b": 2}', '/* open', '{"a": "x\ny"}',
    '{"a": 1, "a": 2}', '{"a": "\\x"}', '[01]',
])
def test_json5_extras_and_broken_text_are_errors(text: str) -> None:
    with pytest.raises(JsoncError):
        parse(text)


def test_comments_trailing_commas_and_bom_are_accepted() -> None:
    text = '\ufeff{ // c\n  "a": [1, 2.5, -0, 1e3,], /* b */ "b": {"c": null,},\n}'
    assert parse(text) == {"a": [1, 2.5, 0, 1000.0], "b": {"c": None}}
    assert type(parse(text)["a"][0]) is int and type(parse(text)["a"][3]) is float


def test_error_names_line_column_and_what_was_expected() -> None:
    with pytest.raises(JsoncError) as info:
        parse('{\r\n  "a": 1\r\n  "b": 2\r\n}')
    err = info.value
    assert (err.line, err.col) == (3, 3)
    assert "expected ',' or '}'" in err.msg and str(err) == f"3:3: {err.msg}"


def test_duplicate_key_points_at_the_second_key() -> None:
    with pytest.raises(JsoncError) as info:
        parse('{\n  "a": 1,\n  "a": 2\n}')
    assert (info.value.line, info.value.col) == (3, 3) and "duplicate" in info.value.msg


def test_modify_rejects_unparseable_input_with_jsonc_error() -> None:
    with pytest.raises(JsoncError):
        modify('{"a": 1', ["b"], 2)


def test_replacing_a_value_changes_only_its_span() -> None:
    text = '{\n  "a": 1, // one\n  "b": [1, 2] /* two */\n}\n'
    assert modify(text, ["b"], "x") == text.replace("[1, 2]", '"x"')


def test_setting_an_equal_value_leaves_the_text_alone() -> None:
    text = '{ "a" : { "b" :1 } }'
    assert modify(text, ["a"], {"b": 1}) == text


def test_missing_intermediate_keys_are_wrapped_into_the_deepest_existing_object() -> None:
    text = '{\n  "provider": {\n    "x": {\n      "npm": "y"\n    }\n  }\n}\n'
    out = modify(text, ["provider", "x", "models", "m"], {"name": "M"})
    assert parse(out) == {"provider": {"x": {"npm": "y", "models": {"m": {"name": "M"}}}}}
    assert out.startswith(text[: text.index('"y"') + 3] + ",\n      \"models\": {\n        \"m\": {")


def test_several_inserts_into_one_object_append_in_order_on_their_own_lines() -> None:
    text = '{\n  "models": {\n    "a": 1 // a\n  }\n}\n'
    out = modify_many(text, [(["models", k], i) for i, k in enumerate("bcd")])
    assert out == '{\n  "models": {\n    "a": 1, // a\n    "b": 0,\n    "c": 1,\n    "d": 2\n  }\n}\n'


def test_inserts_into_a_new_provider_merge_into_one_block() -> None:
    text = '{\n  "provider": {}\n}\n'
    changes = [(["provider", "p", "models", m], {}) for m in ("m1", "m2")]
    out = modify_many(text, changes)
    assert parse(out) == {"provider": {"p": {"models": {"m1": {}, "m2": {}}}}}
    assert out.count('"p"') == 1


def test_remove_of_a_missing_key_is_a_no_op() -> None:
    text = '{"a": 1}'
    assert modify(text, ["b"], REMOVE) == text
    assert modify(text, ["x", "y"], REMOVE) == text


def test_removing_every_member_leaves_an_empty_object() -> None:
    text = '{\n  "m": {\n    "a": 1,\n    "b": 2\n  }\n}\n'
    out = modify_many(text, [(["m", "a"], REMOVE), (["m", "b"], REMOVE)])
    assert parse(out) == {"m": {}} and "\n  }\n}\n" in out


def test_overlapping_changes_mean_what_they_mean_applied_in_order() -> None:
    text = '{\n  "p": {\n    "a": 1\n  }\n}\n'
    out = modify_many(text, [(["p", "a"], 5), (["p"], REMOVE), (["p"], {"z": 1}), (["p", "y"], 2)])
    assert parse(out) == {"p": {"z": 1, "y": 2}}


def test_array_elements_can_be_replaced_removed_and_appended() -> None:
    text = '{\n  "l": [\n    1,\n    2\n  ]\n}'
    assert parse(modify(text, ["l", 0], REMOVE)) == {"l": [2]}
    assert parse(modify(text, ["l", 2], 3)) == {"l": [1, 2, 3]}
    assert parse(modify_many(text, [(["l", 0], REMOVE), (["l", 0], 9)])) == {"l": [9]}


@pytest.mark.parametrize(("path", "value"), [(["a", "b"], 1), (["l", 5], 1), (["l", "x"], 1),
                                              ([], REMOVE), (["n"], float("nan")), (["n"], object())])
def test_impossible_changes_raise_patch_error(path: list[object], value: object) -> None:
    with pytest.raises(PatchError):
        modify('{"a": 1, "l": []}', path, value)  # type: ignore[arg-type]


def test_non_ascii_is_written_as_is_and_escapes_follow_json() -> None:
    out = modify('{\n  "a": 1\n}', ["ключ"], 'naïve "q"\n')
    assert '"ключ": "naïve \\"q\\"\\n"' in out


def test_mixed_line_endings_use_the_first_lines_ending() -> None:
    out = modify('{\r\n  "a": 1\n}', ["b"], 2)
    assert out == '{\r\n  "a": 1,\r\n  "b": 2\n}'
