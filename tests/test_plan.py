"""The planner: one test per rule, plus hypothesis properties over random files and fetches."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from syncd import jsonc
from syncd.model import FetchResult, Kind, ModelKind, RemoteModel, Skipped
from syncd.settings import AliasPolicy, ProviderPolicy, RemovePolicy, WhitelistPolicy
from syncd.sync.plan import REMOVE, ProviderPlan, plan_provider, protected_models, restore
from syncd.sync.records import ProviderState
from syncd.sync.render import render_entry


def fetch(*models: RemoteModel, suspicious: tuple[Skipped, ...] = ()) -> FetchResult:
    return FetchResult("p", Kind.OLLAMA, tuple(models), suspicious)


def M(mid: str, **kw: Any) -> RemoteModel:  # noqa: N802 - reads like a constructor
    return RemoteModel(id=mid, **kw)


def apply(block: dict[str, Any], changes: tuple[tuple[tuple[str | int, ...], Any], ...],
          ) -> dict[str, Any]:
    """What syncd.jsonc.modify_many does to the data: set (creating parents) or delete."""
    out = copy.deepcopy(block)
    for path, value in changes:
        node = out
        for key in path[:-1]:
            node = node.setdefault(key, {})
        if value is REMOVE:
            del node[path[-1]]
        else:
            node[path[-1]] = copy.deepcopy(value)
    return out


def run(block: dict[str, Any], fetched: FetchResult | None, state: ProviderState | None = None,
        policy: ProviderPolicy | None = None, protected: frozenset[str] = frozenset(),
        catalog: bool = False) -> tuple[ProviderPlan, dict[str, Any]]:
    plan = plan_provider(current=block.get("models"), fetched=fetched,
                         state=state or ProviderState(), policy=policy or ProviderPolicy(),
                         protected=protected, catalog_has_provider=catalog, block=block)
    return plan, apply(block, plan.changes)


def cycles(block: dict[str, Any], fetched: FetchResult | None, state: ProviderState, n: int,
           **kw: Any) -> tuple[ProviderPlan, dict[str, Any], ProviderState]:
    plan = None
    for _ in range(n):
        plan, block = run(block, fetched, state, **kw)
        state = plan.state
    assert plan is not None
    return plan, block, state


# --- filters ----------------------------------------------------------------------------------


def test_new_served_model_is_added_with_its_rendered_entry() -> None:
    m = M("qwen3:8b", context=40960, tool_call=True)
    plan, block = run({"models": {}}, fetch(m))
    assert plan.added == ("qwen3:8b",)
    assert block["models"]["qwen3:8b"] == render_entry(m)
    assert plan.state.managed["qwen3:8b"] == render_entry(m)


def test_missing_models_object_is_created_in_one_change() -> None:
    plan, block = run({"options": {"baseURL": "x"}}, fetch(M("a"), M("b")))
    assert [path for path, _ in plan.changes] == [("models",)]
    assert list(block["models"]) == ["a", "b"]


def test_embedding_models_are_skipped_by_default_and_unknown_kind_counts_as_chat() -> None:
    plan, _ = run({"models": {}}, fetch(M("nomic-embed", kind=ModelKind.EMBEDDING), M("llama")))
    assert plan.added == ("llama",)
    assert plan.skipped == ("nomic-embed",)


def test_kinds_setting_admits_embeddings() -> None:
    policy = ProviderPolicy(kinds=frozenset({ModelKind.CHAT, ModelKind.EMBEDDING}))
    plan, _ = run({"models": {}}, fetch(M("e", kind=ModelKind.EMBEDDING)), policy=policy)
    assert plan.added == ("e",)


def test_include_and_exclude_globs_filter_ids() -> None:
    policy = ProviderPolicy(include=("qwen/*", "anthropic/*"), exclude=("*:free",))
    served = fetch(M("qwen/a"), M("qwen/b:free"), M("openai/c"), M("anthropic/d"))
    plan, _ = run({"models": {}}, served, policy=policy)
    assert plan.added == ("qwen/a", "anthropic/d")
    assert set(plan.skipped) == {"qwen/b:free", "openai/c"}


def test_digest_aliases_keep_the_tag_that_is_not_latest() -> None:
    served = fetch(M("llama3:latest", digest="d1"), M("llama3:8b", digest="d1"),
                   M("x", digest="d2"))
    plan, _ = run({"models": {}}, served)
    assert plan.added == ("llama3:8b", "x")
    assert plan.skipped == ("llama3:latest",)


def test_digest_alias_already_in_the_file_is_kept_to_avoid_churn() -> None:
    served = fetch(M("llama3:latest", digest="d1"), M("llama3:8b", digest="d1"))
    plan, _ = run({"models": {"llama3:latest": {}}}, served)
    assert plan.added == ()
    assert plan.skipped == ("llama3:8b",)


def test_aliases_keep_writes_every_tag() -> None:
    served = fetch(M("llama3:latest", digest="d1"), M("llama3:8b", digest="d1"))
    plan, _ = run({"models": {}}, served, policy=ProviderPolicy(aliases=AliasPolicy.KEEP))
    assert set(plan.added) == {"llama3:latest", "llama3:8b"}


def test_suspicious_ids_are_skipped_even_if_the_fetcher_let_them_through() -> None:
    served = fetch(M("x-{file:~/.ssh/id_rsa}"), M("ok"),
                   suspicious=(Skipped("bad\x00", "control character"),))
    plan, block = run({"models": {}}, served)
    assert plan.added == ("ok",)
    assert set(plan.skipped) == {"x-{file:~/.ssh/id_rsa}", "bad\x00"}
    assert "{file:" not in repr(block)


# --- updates ----------------------------------------------------------------------------------


def test_managed_entry_follows_upstream_field_by_field() -> None:
    _, block, state = cycles({"models": {}}, fetch(M("m", context=8192)), ProviderState(), 1)
    plan, block = run(block, fetch(M("m", context=131072)), state)
    assert plan.updated == ("m",)
    assert block["models"]["m"] == render_entry(M("m", context=131072))
    assert (("models", "m", "limit", "context"), 131072) in plan.changes


def test_field_the_user_edited_stays_while_the_rest_follows_upstream() -> None:
    _, block, state = cycles({"models": {}}, fetch(M("m", context=8192)), ProviderState(), 1)
    block["models"]["m"]["name"] = "My model"
    block["models"]["m"]["limit"]["output"] = 1000
    plan, block = run(block, fetch(M("m", name="Upstream", context=65536, tool_call=True)), state)
    entry = block["models"]["m"]
    assert entry["name"] == "My model"
    assert entry["limit"] == {"context": 65536, "output": 1000}
    assert entry["tool_call"] is True
    # and again next cycle: the user's values still win
    plan2, block2 = run(block, fetch(M("m", name="Newer", context=65536, tool_call=True)),
                        plan.state)
    assert plan2.changes == ()
    assert block2["models"]["m"]["name"] == "My model"


def test_field_the_user_deleted_is_not_put_back() -> None:
    _, block, state = cycles({"models": {}}, fetch(M("m", tool_call=True)), ProviderState(), 1)
    del block["models"]["m"]["tool_call"]
    plan, block = run(block, fetch(M("m", tool_call=False)), state)
    assert "tool_call" not in block["models"]["m"]
    assert plan.updated == ()


def test_field_upstream_no_longer_knows_is_removed_when_untouched() -> None:
    _, block, state = cycles({"models": {}}, fetch(M("m", reasoning=True)), ProviderState(), 1)
    plan, block = run(block, fetch(M("m")), state)
    assert (("models", "m", "reasoning"), REMOVE) in plan.changes
    assert "reasoning" not in block["models"]["m"]


def test_user_owned_entry_is_never_modified() -> None:
    mine = {"name": "Mine", "limit": {"context": 1, "output": 1}}
    plan, block = run({"models": {"m": mine}}, fetch(M("m", context=999, tool_call=True)))
    assert plan.changes == ()
    assert block["models"]["m"] == mine


# --- tombstones -------------------------------------------------------------------------------


def test_managed_entry_deleted_by_hand_is_tombstoned_and_not_re_added() -> None:
    _, block, state = cycles({"models": {}}, fetch(M("a"), M("b")), ProviderState(), 1)
    del block["models"]["a"]
    plan, block = run(block, fetch(M("a"), M("b")), state)
    assert plan.tombstoned == ("a",)
    assert "a" in plan.state.tombstones and "a" not in plan.state.managed
    assert "a" not in block["models"]
    plan2, _ = run(block, fetch(M("a"), M("b")), plan.state)
    assert plan2.added == () and plan2.changes == ()


def test_restore_lifts_the_tombstone_so_the_model_comes_back() -> None:
    state = ProviderState(tombstones=frozenset({"a"}))
    plan, _ = run({"models": {}}, fetch(M("a")), restore(state, "a"))
    assert plan.added == ("a",)


# --- removal ----------------------------------------------------------------------------------


def test_removal_waits_for_grace_successful_fetches() -> None:
    _, block, state = cycles({"models": {}}, fetch(M("a"), M("b")), ProviderState(), 1)
    plan, block = run(block, fetch(M("b")), state)
    assert plan.pending == ("a",) and plan.removed == ()
    plan, block = run(block, fetch(M("b")), plan.state)
    assert plan.removed == ("a",)
    assert "a" not in block["models"] and "a" not in plan.state.managed


def test_removed_model_survives_failed_fetch() -> None:
    _, block, state = cycles({"models": {}}, fetch(M("a")), ProviderState(), 1)
    plan, block2, state = cycles(block, None, state, 5)
    assert plan.changes == () and block2 == block
    assert state.misses == {}


def test_empty_list_removes_nothing_and_warns() -> None:
    _, block, state = cycles({"models": {}}, fetch(M("a")), ProviderState(), 1)
    plan, block2, _ = cycles(block, fetch(), state, 5)
    assert plan.removed == () and block2 == block
    assert plan.warnings


def test_failed_fetch_between_misses_does_not_reset_or_advance_the_count() -> None:
    _, block, state = cycles({"models": {}}, fetch(M("a"), M("b")), ProviderState(), 1)
    plan, block, state = cycles(block, fetch(M("b")), state, 1)
    plan, block, state = cycles(block, None, state, 1)
    assert state.misses == {"a": 1}
    plan, block, state = cycles(block, fetch(M("b")), state, 1)
    assert plan.removed == ("a",)


def test_model_that_comes_back_resets_its_miss_count() -> None:
    _, block, state = cycles({"models": {}}, fetch(M("a"), M("b")), ProviderState(), 1)
    _, block, state = cycles(block, fetch(M("b")), state, 1)
    _, block, state = cycles(block, fetch(M("a"), M("b")), state, 1)
    plan, block, state = cycles(block, fetch(M("b")), state, 1)
    assert plan.pending == ("a",) and plan.removed == ()


def test_protected_model_is_withheld_not_removed() -> None:
    _, block, state = cycles({"models": {}}, fetch(M("a"), M("b")), ProviderState(), 1)
    plan, block, _ = cycles(block, fetch(M("b")), state, 3, protected=frozenset({"a"}))
    assert plan.withheld == ("a",) and "a" in block["models"]


def test_remove_never_keeps_managed_models() -> None:
    policy = ProviderPolicy(remove=RemovePolicy.NEVER)
    _, block, state = cycles({"models": {}}, fetch(M("a"), M("b")), ProviderState(), 1)
    plan, block, _ = cycles(block, fetch(M("b")), state, 4, policy=policy)
    assert "a" in block["models"] and plan.removed == ()


def test_remove_managed_leaves_user_entries_the_provider_does_not_serve() -> None:
    plan, block, _ = cycles({"models": {"mine": {}}}, fetch(M("b")), ProviderState(), 4)
    assert "mine" in block["models"]


def test_remove_all_removes_unserved_user_entries_after_grace() -> None:
    policy = ProviderPolicy(remove=RemovePolicy.ALL, grace=3)
    block = {"models": {"mine": {"name": "x"}, "served": {}}}
    plan, block, _ = cycles(block, fetch(M("served")), ProviderState(), 2, policy=policy)
    assert plan.pending == ("mine",)
    plan, block, _ = cycles(block, fetch(M("served")), plan.state, 1, policy=policy)
    assert plan.removed == ("mine",) and set(block["models"]) == {"served"}


def test_grace_one_removes_on_the_first_miss() -> None:
    _, block, state = cycles({"models": {}}, fetch(M("a"), M("b")), ProviderState(), 1)
    plan, _ = run(block, fetch(M("b")), state, policy=ProviderPolicy(grace=1))
    assert plan.removed == ("a",)


# --- whitelist --------------------------------------------------------------------------------


def test_whitelist_is_maintained_for_a_catalog_provider_without_one() -> None:
    plan, block = run({"models": {"mine": {}}}, fetch(M("a")), catalog=True)
    assert block["whitelist"] == ["mine", "a"]
    _, block = run(block, fetch(M("a"), M("b")), plan.state, catalog=True)
    assert block["whitelist"] == ["mine", "a", "b"]


def test_whitelist_is_left_alone_without_catalog_in_auto_mode() -> None:
    plan, block = run({"models": {}}, fetch(M("a")), catalog=False)
    assert "whitelist" not in block
    policy = ProviderPolicy(whitelist=WhitelistPolicy.ALWAYS)
    _, block = run({"models": {}}, fetch(M("a")), policy=policy)
    assert block["whitelist"] == ["a"]


def test_users_own_whitelist_is_never_touched() -> None:
    plan, block = run({"models": {}, "whitelist": ["x"]}, fetch(M("a")), catalog=True)
    assert block["whitelist"] == ["x"] and plan.state.whitelist is None


def test_whitelist_edited_by_the_user_becomes_theirs() -> None:
    plan, block = run({"models": {}}, fetch(M("a")), catalog=True)
    block["whitelist"] = ["a", "extra"]
    plan, block = run(block, fetch(M("a"), M("b")), plan.state, catalog=True)
    assert block["whitelist"] == ["a", "extra"]


def test_syncds_whitelist_stays_syncds_while_the_catalog_is_unavailable() -> None:
    plan, block = run({"models": {}}, fetch(M("a")), catalog=True)
    # one cycle without the catalog (OpenCode rewriting its cache) must not hand the list to the user
    plan, block = run(block, fetch(M("a")), plan.state, catalog=False)
    assert plan.state.whitelist == ("a",)
    _, block = run(block, fetch(M("a"), M("b")), plan.state, catalog=True)
    assert block["whitelist"] == ["a", "b"]


# --- helpers ----------------------------------------------------------------------------------


def test_protected_models_split_on_the_first_slash() -> None:
    config = {"model": "router/anthropic/claude-sonnet-4", "small_model": "other/x"}
    assert protected_models(config, "router") == {"anthropic/claude-sonnet-4"}
    assert protected_models(config, "other") == {"x"}
    assert protected_models({"model": 3}, "router") == frozenset()


def test_models_that_is_not_an_object_is_left_alone() -> None:
    plan = plan_provider(current=["a"], fetched=fetch(M("b")),
                         state=ProviderState(), policy=ProviderPolicy(), protected=frozenset(),
                         catalog_has_provider=False, block={})
    assert plan.changes == () and plan.error is not None and "`models` is a list" in plan.error


# --- properties -------------------------------------------------------------------------------

IDS = st.sampled_from(["a", "b", "c:latest", "c:8b", "d/e", "f"])
remote = st.builds(M, IDS, context=st.none() | st.integers(1, 10**6),
                   tool_call=st.none() | st.booleans(), reasoning=st.none() | st.booleans(),
                   digest=st.none() | st.sampled_from(["d1", "d2"]))
fetches = st.none() | st.builds(lambda ms: fetch(*ms), st.lists(remote, max_size=6))
user_entries = st.dictionaries(IDS, st.fixed_dictionaries({"name": st.text(max_size=3)}),
                               max_size=3)
policies = st.builds(ProviderPolicy, remove=st.sampled_from([RemovePolicy.NEVER,
                                                             RemovePolicy.MANAGED]),
                     grace=st.integers(1, 3), aliases=st.sampled_from(list(AliasPolicy)))


def _history(user: dict[str, Any], history: list[FetchResult | None], policy: ProviderPolicy,
             ) -> tuple[dict[str, Any], ProviderState]:
    block: dict[str, Any] = {"models": copy.deepcopy(user)}
    state = ProviderState()
    for f in history:
        plan, block = run(block, f, state, policy)
        state = plan.state
    return block, state


@settings(max_examples=150, deadline=None)
@given(user_entries, st.lists(fetches, max_size=4), policies)
def test_failed_or_empty_fetch_never_removes(user: dict[str, Any],
                                             history: list[FetchResult | None],
                                             policy: ProviderPolicy) -> None:
    block, state = _history(user, history, policy)
    for bad in (None, fetch()):
        plan, after = run(block, bad, state, policy)
        assert plan.removed == ()
        assert set(after["models"]) >= set(block["models"])


@settings(max_examples=150, deadline=None)
@given(user_entries, st.lists(fetches, max_size=4), policies)
def test_user_owned_entries_never_appear_in_changes(user: dict[str, Any],
                                                    history: list[FetchResult | None],
                                                    policy: ProviderPolicy) -> None:
    block: dict[str, Any] = {"models": copy.deepcopy(user)}
    state = ProviderState()
    for f in history:
        plan, block = run(block, f, state, policy)
        touched = {path[1] for path, _ in plan.changes if len(path) > 1}
        assert not touched & set(user)
        assert all(block["models"][k] == v for k, v in user.items())
        state = plan.state


@settings(max_examples=150, deadline=None)
@given(user_entries, st.lists(fetches, max_size=3), fetches, policies, st.booleans())
def test_applying_a_plan_twice_changes_nothing_the_second_time(
        user: dict[str, Any], history: list[FetchResult | None], last: FetchResult | None,
        policy: ProviderPolicy, catalog: bool) -> None:
    block, state = _history(user, history, policy)
    first, block = run(block, last, state, policy, catalog=catalog)
    second, _ = run(block, last, first.state, policy, catalog=catalog)
    # only a further miss of a model already pending may act the second time
    assert {p for p, _ in second.changes if p != ("whitelist",)} <= {
        ("models", mid) for mid in first.pending}
    assert second.added == () and second.updated == () and second.tombstoned == ()
    assert (("whitelist",) in {p for p, _ in second.changes}) <= bool(second.removed)


def test_plan_state_is_a_new_value_and_the_input_state_is_untouched() -> None:
    state = ProviderState(misses={"x": 1})
    before = replace(state)
    run({"models": {}}, fetch(M("a")), state)
    assert state == before


def test_plans_apply_through_the_real_jsonc_patcher_keeping_comments() -> None:
    text = """{
  // my providers
  "provider": {
    "p": {
      "options": {"baseURL": "x"},
      "models": {
        "mine": {"name": "Mine"} // keep me
      }
    }
  }
}
"""
    state = ProviderState()
    for served in [fetch(M("a", context=8192), M("b")), fetch(M("a", context=65536, vision=True)),
                   fetch(M("a", context=65536, vision=True))]:
        block = jsonc.parse(text)["provider"]["p"]
        plan, expected = run(block, served, state, catalog=True)
        text = jsonc.modify_many(text, [(("provider", "p", *path), v) for path, v in plan.changes])
        assert jsonc.parse(text)["provider"]["p"] == expected
        state = plan.state
    assert "// keep me" in text and "// my providers" in text
    assert list(jsonc.parse(text)["provider"]["p"]["models"]) == ["mine", "a"]
