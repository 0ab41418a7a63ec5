"""What one of syncd's writes of a target changed: frozen values and their JSON in the state file."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

from syncd.sync.jsonshape import frozen as _frozen
from syncd.sync.jsonshape import str_list as _str_list
from syncd.sync.jsonshape import want as _want


class TouchedJSON(TypedDict, total=False):
    file: Any  # before the write; absent when the entry was not in the file
    after: Any  # what the write left; absent when it removed the entry
    managed: dict[str, Any]  # absent when syncd did not manage it
    misses: int


class WrittenJSON(TypedDict, total=False):
    entries: dict[str, TouchedJSON]
    whitelist: TouchedJSON  # present when the write changed the whitelist
    whitelist_owned: list[str] | None


class LastWriteJSON(TypedDict):
    providers: dict[str, WrittenJSON]
    restoration: bool


@dataclass(frozen=True)
class Touched:
    """One thing a write changed: in the file before it (`present`, `value`) and after it
    (`after_present`, `after_value`), and in the state before it (the last-applied entry when
    syncd managed it, its miss count)."""

    present: bool
    value: Any = None
    after_present: bool = False
    after_value: Any = None
    managed: Mapping[str, Any] | None = None
    misses: int = 0


@dataclass(frozen=True)
class Written:
    """What one write changed in one provider block: model entries by ID, maybe the whitelist."""

    entries: Mapping[str, Touched] = field(default_factory=_frozen)
    whitelist: Touched | None = None  # set when the write changed `whitelist`
    whitelist_owned: tuple[str, ...] | None = None  # ProviderState.whitelist before the write


RECENT_WRITES = 8  # writes kept for judging a save from an editor that stayed open meanwhile


@dataclass(frozen=True)
class LastWrite:
    """What one of syncd's writes of a target changed, to tell whether a later save undid it."""

    providers: Mapping[str, Written] = field(default_factory=_frozen)
    # the write only brought back what a save from a stale buffer had undone: undoing it again
    # is the user insisting, not another stale buffer
    restoration: bool = False


def _touched_to_json(b: Touched) -> TouchedJSON:
    out: TouchedJSON = {}
    if b.present:
        out["file"] = copy.deepcopy(b.value)
    if b.after_present:
        out["after"] = copy.deepcopy(b.after_value)
    if b.managed is not None:
        out["managed"] = copy.deepcopy(dict(b.managed))
    if b.misses:
        out["misses"] = b.misses
    return out


def write_to_json(w: LastWrite) -> LastWriteJSON:
    providers: dict[str, WrittenJSON] = {}
    for pid, written in sorted(w.providers.items()):
        one: WrittenJSON = {"entries": {mid: _touched_to_json(b)
                                        for mid, b in sorted(written.entries.items())}}
        if written.whitelist is not None:
            one["whitelist"] = _touched_to_json(written.whitelist)
            owned = written.whitelist_owned
            one["whitelist_owned"] = None if owned is None else list(owned)
        providers[pid] = one
    return {"providers": providers, "restoration": w.restoration}


def _touched_from_json(raw: object, where: str) -> Touched:
    d: dict[str, Any] = _want(raw, dict, where)
    managed = d.get("managed")
    return Touched(
        present="file" in d, value=d.get("file"),
        after_present="after" in d, after_value=d.get("after"),
        managed=None if managed is None else _frozen(_want(managed, dict, f"{where}.managed")),
        misses=_want(d.get("misses", 0), int, f"{where}.misses"),
    )


def write_from_json(raw: object, where: str) -> LastWrite | None:
    if raw is None:
        return None
    d: dict[str, Any] = _want(raw, dict, where)
    providers: dict[str, Written] = {}
    for pid, p in _want(d.get("providers", {}), dict, f"{where}.providers").items():
        one: dict[str, Any] = _want(p, dict, f"{where}.{pid}")
        entries = _want(one.get("entries", {}), dict, f"{where}.{pid}.entries")
        wl, owned = one.get("whitelist"), one.get("whitelist_owned")
        providers[pid] = Written(
            entries=_frozen({mid: _touched_from_json(b, f"{where}.{pid}.{mid}")
                             for mid, b in entries.items()}),
            whitelist=None if wl is None else _touched_from_json(wl, f"{where}.{pid}.whitelist"),
            whitelist_owned=None if owned is None else tuple(_str_list(owned, f"{where}.{pid}")),
        )
    return LastWrite(_frozen(providers), _want(d.get("restoration", False), bool, where))
