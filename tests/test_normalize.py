"""Pure normalising rules: unsafe IDs, kinds named by IDs, value coercion, screening and merging."""

from __future__ import annotations

import pytest

from syncd.model import ModelKind, RemoteModel
from syncd.providers.normalize import (
    MAX_ID_LEN,
    as_int,
    kind_from_id,
    merge,
    modalities,
    per_million,
    screen,
    settle_kind,
    unsafe_reason,
)


@pytest.mark.parametrize("value", ["{file:/etc/hostname}", "x-{env:HOME}", "a\nb", "tab\there",
                                   "nul\x00", "del\x7f", "", "x" * (MAX_ID_LEN + 1)])
def test_unsafe_values_have_a_reason(value: str) -> None:
    assert unsafe_reason(value)


@pytest.mark.parametrize("value", ["qwen3-coder:30b", "anthropic/claude-sonnet-4.5", "{json}",
                                   "modèle-ü", "x" * MAX_ID_LEN])
def test_ordinary_ids_are_safe(value: str) -> None:
    assert unsafe_reason(value) is None


@pytest.mark.parametrize(("model_id", "kind"), [
    ("nomic-embed-text:latest", ModelKind.EMBEDDING), ("text-embedding-3-small", ModelKind.EMBEDDING),
    ("bge-reranker-v2", ModelKind.OTHER), ("whisper-1", ModelKind.OTHER),
    ("gpt-4o-mini-tts", ModelKind.OTHER), ("dall-e-3", ModelKind.OTHER),
    ("omni-moderation-latest", ModelKind.OTHER), ("qwen3-coder:30b", None),
])
def test_ids_that_name_non_chat_models(model_id: str, kind: ModelKind | None) -> None:
    assert kind_from_id(model_id) is kind


def test_stated_kind_beats_the_id_rule() -> None:
    stated = RemoteModel(id="embed-but-chat", kind=ModelKind.CHAT)
    assert settle_kind(stated).kind is ModelKind.CHAT
    assert settle_kind(RemoteModel(id="my-embedder")).kind is ModelKind.EMBEDDING


def test_as_int_refuses_junk() -> None:
    assert [as_int(v) for v in (4096, 4096.0, "4096", True, -1, 0, "4k", None, 1.5)] == [
        4096, 4096, 4096, None, None, None, None, None, None]


def test_as_int_treats_digits_int_cannot_read_as_unknown() -> None:
    # "²" passes str.isdigit() but int() refuses it; so does a number past Python's digit limit
    assert as_int("\u00b2") is None and as_int("9" * 5000) is None


def test_per_million_from_per_token_strings_and_numbers() -> None:
    assert per_million("0.000003") == pytest.approx(3.0)
    assert per_million(2.5e-06) == pytest.approx(2.5)
    assert per_million("-1") is None and per_million("free") is None and per_million(None) is None


def test_modalities_keep_only_what_opencode_knows() -> None:
    assert modalities(["text", "image", "file", "smell"]) == ("text", "image", "pdf")
    assert modalities("text") is None


def test_screen_drops_unsafe_names_and_folds_duplicates() -> None:
    models = [RemoteModel(id="a", context=10), RemoteModel(id="a", tool_call=True),
              RemoteModel(id="b", name="{file:~/.ssh/id_rsa}"), RemoteModel(id="c\x1b[31m")]
    safe, refused = screen(models)
    assert safe == [RemoteModel(id="a", context=10, tool_call=True)]
    assert sorted(s.id for s in refused) == sorted(["b", "c\\x1b[31m"])
    assert all("\x1b" not in s.id for s in refused)


def test_merge_first_wins() -> None:
    merged = merge(RemoteModel(id="a", context=1), RemoteModel(id="a", context=2, output=3))
    assert (merged.context, merged.output) == (1, 3)
