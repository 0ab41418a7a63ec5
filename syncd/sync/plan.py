"""Plans one provider's changes: served models vs the file vs the state (pure; DESIGN §4.3)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from types import MappingProxyType
from typing import Any

from syncd.jsonc import REMOVE
from syncd.model import FetchResult, ModelKind, RemoteModel
from syncd.providers.normalize import unsafe_reason
from syncd.settings import AliasPolicy, ProviderPolicy, RemovePolicy, WhitelistPolicy
from syncd.sync.records import ProviderState
from syncd.sync.refs import referenced
from syncd.sync.render import render_entry

Path = tuple[str | int, ...]
Change = tuple[Path, Any]


@dataclass(frozen=True, slots=True)
class ProviderPlan:
    """Edits relative to the provider block, what they mean, and the state to save after writing."""

    changes: tuple[Change, ...]
    state: ProviderState
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    withheld: tuple[str, ...] = ()
    pending: tuple[str, ...] = ()
    tombstoned: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    error: str | None = None  # the provider block itself is wrong; nothing was planned


_JSON_TYPES = ((bool, "true/false"), (str, "a string"), (int, "a number"), (float, "a number"),
               (list, "a list"))


def _not_an_object(value: object) -> str:
    what = "null" if value is None else next(
        (name for typ, name in _JSON_TYPES if isinstance(value, typ)), type(value).__name__)
    return (f"`models` is {what}, not an object: OpenCode refuses this config (\"Expected "
            "object\"); make it {} and syncd fills it")


def protected_models(config: Mapping[str, Any], pid: str) -> frozenset[str]:
    """Model IDs of provider `pid` that `model`, `small_model`, `agent.*.model` or `mode.*.model`
    of `config` name: written whatever the filters say, and never removed."""
    return referenced([config], pid)


def restore(state: ProviderState, model_id: str) -> ProviderState:
    """Lift the tombstone of `model_id` so the next cycle adds it again."""
    misses = {k: v for k, v in state.misses.items() if k != model_id}
    return replace(state, tombstones=state.tombstones - {model_id},
                   misses=MappingProxyType(misses))


def _filtered_out(m: RemoteModel, policy: ProviderPolicy) -> bool:
    return ((m.kind or ModelKind.CHAT) not in policy.kinds
            or bool(policy.include and not any(fnmatchcase(m.id, g) for g in policy.include))
            or any(fnmatchcase(m.id, g) for g in policy.exclude))


def select(models: tuple[RemoteModel, ...], policy: ProviderPolicy, present: Mapping[str, Any],
           named: frozenset[str] = frozenset()) -> tuple[dict[str, RemoteModel], list[str]]:
    """The served models syncd wants in the file (by ID, served order) and the IDs it skips.

    An ID a config names (`named`: `model`, `agent.*.model`, …) is wanted whatever the kind,
    glob and alias rules say: OpenCode looks it up under exactly that ID ("Model not found").
    """
    wanted: dict[str, RemoteModel] = {}
    skipped: list[str] = []
    seen: set[str] = set()  # a gateway may serve thousands of models that are all filtered out
    for m in models:
        if m.id in seen:
            continue
        seen.add(m.id)
        if unsafe_reason(m.id) is not None or (m.id not in named and _filtered_out(m, policy)):
            skipped.append(m.id)
        else:
            wanted[m.id] = m
    if policy.aliases is AliasPolicy.DEDUPE:
        by_digest: dict[str, list[str]] = {}
        for mid, m in wanted.items():
            if m.digest:
                by_digest.setdefault(m.digest, []).append(mid)
        for ids in by_digest.values():
            # the tag already in the file (no churn), else one that is not `latest`; and every
            # tag a config names, which alone replaces that choice when the choice is not written yet
            choice = min(ids, key=lambda i: (i not in present, i.rsplit(":", 1)[-1] == "latest"))
            keep = {i for i in ids if i in named}
            if not keep or choice in present:
                keep.add(choice)
            for mid in ids:
                if mid not in keep:
                    del wanted[mid]
                    skipped.append(mid)
    return wanted, skipped


def merge3(path: Path, current: Mapping[str, Any], last: Mapping[str, Any],
           desired: Mapping[str, Any]) -> tuple[list[Change], dict[str, Any]]:
    """Three-way merge of one entry: fields the user changed stay; the rest follow upstream.

    Returns the edits and the new last-applied entry: what syncd wrote for the fields it owns,
    and the old last-applied value for fields the user took over (so they stay the user's).
    """
    changes: list[Change] = []
    new_last: dict[str, Any] = {}
    for key in [*last, *(k for k in desired if k not in last)]:
        here = (*path, key)
        in_cur, in_last, in_des = key in current, key in last, key in desired
        cur, old, new = current.get(key), last.get(key), desired.get(key)
        if isinstance(cur, Mapping) and isinstance(old, Mapping) and isinstance(new, Mapping):
            sub_changes, sub_last = merge3(here, cur, old, new)
            changes += sub_changes
            new_last[key] = sub_last
        elif in_last and (not in_cur or cur != old):
            new_last[key] = old  # the user's now
        elif in_last:  # untouched by the user: follow upstream
            if not in_des:
                changes.append((here, REMOVE))
            else:
                if new != cur:
                    changes.append((here, new))
                new_last[key] = new
        elif in_des and not in_cur:  # new upstream field
            changes.append((here, new))
            new_last[key] = new
        # else: a field the user added; it is theirs
    return changes, new_last


def _whitelist(block: Mapping[str, Any], state: ProviderState, policy: ProviderPolicy,
               catalog_has_provider: bool, final_ids: list[str],
               ) -> tuple[list[Change], tuple[str, ...] | None]:
    """Keep `whitelist` = every model ID of the block, when it is syncd's to keep."""
    existing = block.get("whitelist")
    ours = existing is None or (state.whitelist is not None and existing == list(state.whitelist))
    wanted = (policy.whitelist is WhitelistPolicy.ALWAYS
              or (policy.whitelist is WhitelistPolicy.AUTO and catalog_has_provider))
    if not (ours and wanted):  # a whitelist syncd wrote stays syncd's until the user edits it
        return [], state.whitelist if ours and existing is not None else None
    if existing == final_ids:
        return [], tuple(final_ids)
    return [(("whitelist",), list(final_ids))], tuple(final_ids)


def plan_provider(*, current: object, fetched: FetchResult | None,
                  state: ProviderState, policy: ProviderPolicy, protected: frozenset[str],
                  catalog_has_provider: bool, block: Mapping[str, Any]) -> ProviderPlan:
    """The plan for one provider of one target (see DESIGN §4.3 for every rule).

    `current` is the block's `models` as written, None when it has none.
    """
    if current is not None and not isinstance(current, Mapping):
        return ProviderPlan((), state, error=_not_an_object(current))  # left exactly as it is
    present: Mapping[str, Any] = current or {}
    managed = {k: dict(v) for k, v in state.managed.items()}
    tombstones = set(state.tombstones)
    misses = dict(state.misses)
    changes: list[Change] = []
    warnings: list[str] = []

    # a managed entry gone from the file was deleted by the user: never re-add it
    tombstoned = [mid for mid in managed if mid not in present]
    for mid in tombstoned:
        tombstones.add(mid)
        del managed[mid]
        misses.pop(mid, None)

    added: list[str] = []
    removed: list[str] = []
    updated: list[str] = []
    withheld: list[str] = []
    pending: list[str] = []
    skipped: list[str] = []
    new_models: dict[str, Any] = {}
    new_state = state
    if fetched is not None and fetched.unlisted is not None:
        # a provider without a model list: its entries stay exactly as written, every cycle
        new_state = replace(state, kind=str(fetched.kind), served=0, served_ids=())
        warnings.append(fetched.unlisted)
        fetched = None
    if fetched is not None:
        served_ids = {m.id for m in fetched.models} | {s.id for s in fetched.suspicious}
        new_state = replace(state, kind=str(fetched.kind), served=len(served_ids),
                            served_ids=tuple(sorted(served_ids)))
        wanted, skipped = select(fetched.models, policy, present, protected)
        filtered = set(skipped)
        skipped = [s.id for s in fetched.suspicious if s.id not in filtered] + skipped

        for mid, m in wanted.items():
            if mid not in present and mid not in tombstones:
                new_models[mid] = render_entry(m)
                added.append(mid)

        for mid, last in list(managed.items()):
            entry = present[mid]
            if mid not in wanted or not isinstance(entry, Mapping):
                continue  # gone upstream (handled below), or the user replaced the whole entry
            edits, managed[mid] = merge3(("models", mid), entry, last, render_entry(wanted[mid]))
            if edits:
                changes += edits
                updated.append(mid)

        if not served_ids:
            warnings.append("served an empty list; nothing removed")
        elif policy.remove is not RemovePolicy.NEVER:
            candidates = [mid for mid in managed if mid not in wanted]
            if policy.remove is RemovePolicy.ALL:
                candidates += [mid for mid in present
                               if mid not in managed and mid not in served_ids]
            for mid in candidates:
                misses[mid] = misses.get(mid, 0) + 1
                if misses[mid] < policy.grace:
                    pending.append(mid)
                elif mid in protected:
                    withheld.append(mid)
                else:
                    changes.append((("models", mid), REMOVE))
                    removed.append(mid)
                    managed.pop(mid, None)
                    del misses[mid]
            still_missing = set(candidates)
            misses = {k: v for k, v in misses.items() if k in still_missing}

    if new_models:
        if current is None:
            changes.append((("models",), new_models))
        else:
            changes += [(("models", mid), entry) for mid, entry in new_models.items()]
        managed.update(copy.deepcopy(new_models))

    final_ids = [mid for mid in present if mid not in removed] + added
    wl_changes, wl_state = _whitelist(block, state, policy, catalog_has_provider, final_ids)
    changes += wl_changes
    return ProviderPlan(
        changes=tuple(changes),
        state=replace(new_state, managed=MappingProxyType(managed),
                      tombstones=frozenset(tombstones), misses=MappingProxyType(misses),
                      whitelist=wl_state),
        added=tuple(added), removed=tuple(removed), updated=tuple(updated),
        skipped=tuple(skipped), withheld=tuple(withheld), pending=tuple(pending),
        tombstoned=tuple(tombstoned), warnings=tuple(warnings),
    )
