"""The pure report helpers of one cycle (syncd.outcome)."""

from __future__ import annotations

from syncd.sync.outcome import unserved_ids, unserved_warnings
from syncd.sync.records import ProviderState

SERVED = ProviderState(served_ids=("qwen3-coder:30b", "gemma4:e4b"))


def test_a_user_owned_id_the_provider_does_not_serve_gets_a_did_you_mean() -> None:
    missing = unserved_ids({"qwen3-coder:32b": {}}, SERVED)
    assert missing == ("qwen3-coder:32b",)
    (line,) = unserved_warnings(missing, SERVED)
    assert line == "`qwen3-coder:32b` is not served by the provider; did you mean `qwen3-coder:30b`?"


def test_an_entry_whose_id_field_is_served_is_not_warned_about() -> None:
    # OpenCode sends `id` upstream when the entry has one; the key is only the picker's name
    assert unserved_ids({"coder": {"id": "qwen3-coder:30b", "name": "Coder"}}, SERVED) == ()
    assert unserved_ids({"coder": {"id": "qwen3-coder:32b"}}, SERVED) == ("qwen3-coder:32b",)


def test_syncds_own_entries_are_not_checked() -> None:
    managed = ProviderState(served_ids=SERVED.served_ids, managed={"gone:1b": {}})
    assert unserved_ids({"gone:1b": {}}, managed) == ()


def test_nothing_is_warned_before_a_successful_fetch() -> None:
    assert unserved_ids({"anything": {}}, ProviderState()) == ()
