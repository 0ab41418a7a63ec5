"""Stale-buffer saves: what syncd's recent writes changed, and undoing them when a save undid them (pure).

An editor holding a buffer read before syncd wrote saves it over those writes: the models syncd
added vanish without the user ever having seen them. That is no deletion. A save *undid* the
newest n of syncd's writes when every entry they touched is back as it was before the oldest of
them (and the file is not what syncd wrote last); then syncd plans as if those writes had never
happened: their additions come back, their updates are applied again, their removals are made
again, and nothing is tombstoned or taken over as the user's. The writes are judged by the first
plan of a text that differs from them, whatever the verdict: a deletion judged once stays one. A
write that only brought back what such a save undid is not judged again: undoing that too is
the user deleting on purpose (the first time, they are told to delete again).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from syncd.jsonc import REMOVE
from syncd.sync.plan import Change, ProviderPlan
from syncd.sync.records import ProviderState, State
from syncd.sync.writes import LastWrite, Touched, Written


@dataclass(frozen=True)
class Judgement:
    """A save judged against syncd's recent writes, the last one `sha256`: the ones it `undid`
    (newest first; none when it is the user's own edit), and as one write (`undone`), and the
    model IDs they had added that come back (`back`, by provider)."""

    sha256: str
    undid: tuple[LastWrite, ...] = ()
    undone: LastWrite | None = None
    back: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))


def _blocks(doc: Any) -> Mapping[str, Any]:
    providers = doc.get("provider") if isinstance(doc, Mapping) else None
    return providers if isinstance(providers, Mapping) else {}


def _get(container: Any, key: str) -> tuple[bool, Any]:
    if isinstance(container, Mapping) and key in container:
        return True, container[key]
    return False, None


def _is_as_before(container: Any, key: str, t: Touched) -> bool:
    return _get(container, key) == (t.present, t.value if t.present else None)


def _is_as_after(container: Any, key: str, t: Touched) -> bool:
    return _get(container, key) == (t.after_present, t.after_value if t.after_present else None)


def _applied(present: bool, value: Any, changes: Sequence[Change]) -> tuple[bool, Any]:
    """A value after edits at paths relative to it (REMOVE deletes), as the JSONC patch does."""
    value = copy.deepcopy(value)
    for path, new in changes:
        if not path:
            present, value = (False, None) if new is REMOVE else (True, copy.deepcopy(new))
            continue
        node = value
        for key in path[:-1]:
            node = node.setdefault(key, {})
        if new is REMOVE:
            node.pop(path[-1], None)
        else:
            node[path[-1]] = copy.deepcopy(new)
    return present, value


def _touched(container: Any, key: str, changes: Sequence[Change],
             ps: ProviderState | None = None) -> Touched:
    """`container[key]` before and after `changes` (paths relative to it), with its state."""
    present, value = _get(container, key)
    after_present, after = _applied(present, value, changes)
    if ps is None:
        return Touched(present, value, after_present, after)
    return Touched(present, value, after_present, after, ps.managed.get(key),
                   ps.misses.get(key, 0))


def write_record(doc: Any, plans: Mapping[str, ProviderPlan], state: State,
                 target: str | Path) -> LastWrite | None:
    """What a write of `plans` over the text parsed as `doc` changes, planned from `state`.

    It is a restoration when it only makes again what the write a stale save undid had made.
    """
    undone = state.target(target).undone_write
    blocks = _blocks(doc)
    providers: dict[str, Written] = {}
    restoring = True
    for pid, plan in plans.items():
        if not plan.changes:
            continue
        block = blocks.get(pid)
        models = block.get("models") if isinstance(block, Mapping) else None
        ps = state.provider(target, pid)
        # each model's changes, found in one pass (a scan per model was quadratic: 20 s for a
        # 5,000-model gateway's first write)
        by_model: dict[str, list[tuple[tuple[Any, ...], Any]]] = {}
        whole: list[Mapping[str, Any]] = []  # the `models` object written at once, new blocks
        for p, v in plan.changes:
            if p == ("models",):
                whole.append(v)
            elif len(p) >= 2 and p[0] == "models" and isinstance(p[1], str):
                by_model.setdefault(p[1], []).append((p[2:], v))
        entries = {}
        for mid in dict.fromkeys((*plan.added, *plan.updated, *plan.removed)):
            mine = [*by_model.get(mid, ()), *(((), v[mid]) for v in whole if mid in v)]
            entries[mid] = _touched(models, mid, mine, ps)
        listed = [((), v) for p, v in plan.changes if p == ("whitelist",)]
        whitelist = _touched(block, "whitelist", listed) if listed else None
        providers[pid] = Written(MappingProxyType(entries), whitelist, ps.whitelist)
        brought = set(undone.providers[pid].entries) if (
            undone is not None and pid in undone.providers) else set()
        restoring = restoring and bool(entries) and set(entries) <= brought
    if not providers:
        return None
    return LastWrite(MappingProxyType(providers), restoration=undone is not None and restoring)


def _matches(doc: Any, write: LastWrite, check: Callable[[Any, str, Touched], bool]) -> bool:
    """Whether every entry `write` touched (and its whitelist) passes `check` in `doc`."""
    blocks = _blocks(doc)
    for pid, written in write.providers.items():
        block = blocks.get(pid)
        models = block.get("models") if isinstance(block, Mapping) else None
        if not all(check(models, mid, t) for mid, t in written.entries.items()):
            return False
        if written.whitelist is not None and not check(block, "whitelist", written.whitelist):
            return False
    return True


def settled(state: State, target: str | Path, doc: Any, on_disk_sha256: str) -> State:
    """`state` with a write a killed syncd never recorded settled (`State.settled`), judged by
    content: it landed when the file holds its bytes, or when the file changed since but every
    entry the write touched is as the write left it (the user edited elsewhere on top of it)."""
    pending = state.target(target).pending_write
    landed = None
    if pending is not None and state.target(target).pending_sha256 != on_disk_sha256:
        landed = _matches(doc, pending, _is_as_after)
    return state.settled(target, on_disk_sha256, landed=landed)


def _as_one(writes: Sequence[LastWrite]) -> LastWrite:
    """Writes (newest first) as one: each entry as the earliest of them found it."""
    providers: dict[str, Written] = {}
    for write in writes:
        for pid, w in write.providers.items():
            seen = providers.get(pid, Written())
            whitelist = (w.whitelist, w.whitelist_owned) if w.whitelist is not None else (
                seen.whitelist, seen.whitelist_owned)
            providers[pid] = Written(MappingProxyType({**seen.entries, **w.entries}), *whitelist)
    return LastWrite(MappingProxyType(providers))


def judge(doc: Any, on_disk_sha256: str, state: State, target: str | Path) -> Judgement | None:
    """Judge the text parsed as `doc` (hash `on_disk_sha256`) against syncd's recent writes.

    It undid the newest n of them when every entry they touched is as before the oldest of the
    n; the longest such run counts, never past a write that only restored what a stale save
    undid. None when there is nothing to judge: no write on record, or the file is what syncd
    wrote last.
    """
    ts = state.target(target)
    sha = ts.last_write_sha256
    if not ts.recent_writes or sha is None or sha == on_disk_sha256:
        return None
    undid: tuple[LastWrite, ...] = ()
    for n in range(1, len(ts.recent_writes) + 1):
        run = ts.recent_writes[:n]
        if run[-1].restoration:
            break
        if _matches(doc, _as_one(run), _is_as_before):
            undid = run
    if not undid:
        return Judgement(sha)
    undone = _as_one(undid)
    back = {pid: tuple(mid for mid, t in w.entries.items() if not t.present)
            for pid, w in undone.providers.items()}
    return Judgement(sha, undid, undone, MappingProxyType({p: i for p, i in back.items() if i}))


def undoes(state: State, target: str | Path, judged: Judgement) -> bool:
    """Whether `settle` rolls writes back in `state` (not when it was settled already)."""
    ts = state.target(target)
    return bool(judged.undid) and bool(ts.recent_writes) and ts.last_write_sha256 == judged.sha256


def settle(state: State, target: str | Path, judged: Judgement) -> State:
    """`state` once `judged`: the recent writes are used up, and rolled back if the save undid them.

    Applies only while those writes are still on record (another process may have settled them
    already), so it can be applied again and again to fresh loads of the state.
    """
    ts = state.target(target)
    if not ts.recent_writes or ts.last_write_sha256 != judged.sha256:
        return state
    if judged.undone is None:
        return state.with_target(target, replace(ts, recent_writes=()))
    for pid, written in judged.undone.providers.items():
        state = state.with_provider(target, pid, _roll_back(state.provider(target, pid), written))
    return state.with_target(target, replace(state.target(target), recent_writes=(),
                                             undone_write=judged.undone))


def _roll_back(ps: ProviderState, written: Written) -> ProviderState:
    managed = dict(ps.managed)
    misses = dict(ps.misses)
    for mid, t in written.entries.items():
        if t.managed is None:
            managed.pop(mid, None)
        else:
            managed[mid] = t.managed
        if t.misses:
            misses[mid] = t.misses
        else:
            misses.pop(mid, None)
    whitelist = ps.whitelist if written.whitelist is None else written.whitelist_owned
    # a tombstone on an entry this write touched was made by judging the save that undid it
    return replace(ps, managed=MappingProxyType(managed), misses=MappingProxyType(misses),
                   tombstones=ps.tombstones - set(written.entries), whitelist=whitelist)


def describe(judged: Judgement) -> Sequence[str]:
    """`provider/model` for every model the undone write had added (what comes back)."""
    return [f"{pid}/{mid}" for pid, ids in sorted(judged.back.items()) for mid in sorted(ids)]
