"""What syncd remembers per target and provider, as frozen values, and their JSON shape on disk (pure)."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, TypedDict

from syncd.sync.jsonshape import frozen as _frozen
from syncd.sync.jsonshape import opt_str as _opt_str
from syncd.sync.jsonshape import str_list as _str_list
from syncd.sync.jsonshape import want as _want
from syncd.sync.writes import (
    RECENT_WRITES,
    LastWrite,
    LastWriteJSON,
    write_from_json,
    write_to_json,
)

VERSION = 2  # 2: `detected` (local runtimes detection added), `failing_since`

class ProviderStateJSON(TypedDict, total=False):
    managed: dict[str, dict[str, Any]]
    tombstones: list[str]
    misses: dict[str, int]
    kind: str | None
    last_success: str | None
    last_error: str | None
    last_error_label: str | None
    failures: int
    failing_since: str | None
    served: int
    served_ids: list[str]
    whitelist: list[str] | None


class TargetStateJSON(TypedDict, total=False):
    providers: dict[str, ProviderStateJSON]
    last_write_sha256: str | None
    last_write_at: str | None
    recent_writes: list[LastWriteJSON]
    undone_write: LastWriteJSON
    pending_sha256: str
    pending: dict[str, ProviderStateJSON]
    pending_write: LastWriteJSON
    overlay: str
    in_overlay: bool


class DetectedJSON(TypedDict, total=False):
    provider: str
    target: str
    added_at: str
    declined_at: str | None


class StateJSON(TypedDict, total=False):
    version: int
    targets: dict[str, TargetStateJSON]
    detected: dict[str, DetectedJSON]



@dataclass(frozen=True)
class ProviderState:
    """One provider of one target. `managed` maps model ID to the entry syncd last wrote."""

    managed: Mapping[str, Mapping[str, Any]] = field(default_factory=_frozen)
    tombstones: frozenset[str] = frozenset()
    misses: Mapping[str, int] = field(default_factory=_frozen)
    kind: str | None = None
    last_success: str | None = None  # ISO 8601
    last_error: str | None = None
    last_error_label: str | None = None
    failures: int = 0
    failing_since: str | None = None  # ISO 8601: the first failure since the last success
    served: int = 0
    served_ids: tuple[str, ...] = ()
    # the whitelist syncd itself last wrote; None when the block's whitelist is not syncd's
    whitelist: tuple[str, ...] | None = None

    def succeeded(self, at: datetime) -> ProviderState:
        return replace(self, last_success=at.isoformat(), last_error=None,
                       last_error_label=None, failures=0, failing_since=None)

    def failed(self, reason: str, label: str, at: datetime | None = None) -> ProviderState:
        since = self.failing_since
        if self.failures == 0 or since is None:
            since = at.isoformat() if at is not None else None
        return replace(self, last_error=reason, last_error_label=label,
                       failures=self.failures + 1, failing_since=since)


@dataclass(frozen=True)
class TargetState:
    """What syncd remembers about one target: its providers and its own recent writes."""

    providers: Mapping[str, ProviderState] = field(default_factory=_frozen)
    last_write_sha256: str | None = None
    last_write_at: str | None = None
    # syncd's writes since a plan last judged a text that differs from them, newest first
    recent_writes: tuple[LastWrite, ...] = ()
    undone_write: LastWrite | None = None  # what a stale save last undid, until the next write
    # Recorded just before a replace: a syncd killed between the replace and its record would
    # otherwise leave the models it wrote unknown (user-owned for ever) — see `State.settled`.
    pending_sha256: str | None = None
    pending: Mapping[str, ProviderState] = field(default_factory=_frozen)
    pending_write: LastWrite | None = None
    # the overlay file read with this target: it holds syncd's entries (`in_overlay`, write mode
    # "overlay"), or the user's (or syncd's not yet moved back) after a switch to "in-place"
    overlay: str | None = None
    in_overlay: bool = False


@dataclass(frozen=True)
class Detected:
    """A provider block local-runtime detection added; `declined_at` once the user deleted it."""

    provider: str
    target: str
    added_at: str
    declined_at: str | None = None


@dataclass(frozen=True)
class State:
    """The whole state file in memory; every `with_*` returns a new State."""

    targets: Mapping[str, TargetState] = field(default_factory=_frozen)
    # runtime base URL -> the block detection added for it (never proposed twice)
    detected: Mapping[str, Detected] = field(default_factory=_frozen)
    version: int = VERSION

    def target(self, target: str | Path) -> TargetState:
        return self.targets.get(target_key(target), TargetState())

    def provider(self, target: str | Path, pid: str) -> ProviderState:
        return self.target(target).providers.get(pid, ProviderState())

    def with_target(self, target: str | Path, ts: TargetState) -> State:
        return replace(self, targets=_frozen({**self.targets, target_key(target): ts}))

    def with_provider(self, target: str | Path, pid: str, ps: ProviderState) -> State:
        ts = self.target(target)
        return self.with_target(target, replace(ts, providers=_frozen({**ts.providers, pid: ps})))

    def without_provider(self, target: str | Path, pid: str) -> State:
        ts = self.target(target)
        rest = {k: v for k, v in ts.providers.items() if k != pid}
        return self.with_target(target, replace(ts, providers=_frozen(rest)))

    def with_pending(
        self, target: str | Path, sha256: str | None, providers: Mapping[str, ProviderState],
        write: LastWrite | None = None,
    ) -> State:
        ts = replace(self.target(target), pending_sha256=sha256, pending=_frozen(providers),
                     pending_write=write)
        return self.with_target(target, ts)

    def settled(self, target: str | Path, on_disk_sha256: str, *, landed: bool | None = None
                ) -> State:
        """Finish a write whose record a killed syncd never saved: its pending provider states
        hold when it `landed` (by default: when the target holds the bytes it wrote), and are
        dropped otherwise."""
        ts = self.target(target)
        if ts.pending_sha256 is None:
            return self
        if landed is None:
            landed = ts.pending_sha256 == on_disk_sha256
        providers = {**ts.providers, **ts.pending} if landed else dict(ts.providers)
        written, sha = ts.pending_write, ts.pending_sha256
        ts = replace(ts, providers=_frozen(providers), pending_sha256=None, pending=_frozen(),
                     pending_write=None)
        if landed:
            recent = ((written,) + ts.recent_writes)[:RECENT_WRITES] if written else ()
            ts = replace(ts, last_write_sha256=sha, recent_writes=recent, undone_write=None)
        return self.with_target(target, ts)

    def with_overlay(self, target: str | Path, overlay: str | None, home: bool) -> State:
        ts = replace(self.target(target), overlay=overlay, in_overlay=home and overlay is not None)
        return self.with_target(target, ts)

    def without_target(self, target: str | Path) -> State:
        rest = {k: v for k, v in self.targets.items() if k != target_key(target)}
        return replace(self, targets=_frozen(rest))

    def with_detected(self, base_url: str, d: Detected | None) -> State:
        """Record (or with None forget) what detection did for the runtime at `base_url`."""
        rest = {k: v for k, v in self.detected.items() if k != base_url}
        return replace(self, detected=_frozen({**rest, **({base_url: d} if d else {})}))

    def with_write(
        self, target: str | Path, sha256: str, at: datetime, write: LastWrite | None = None
    ) -> State:
        ts = self.target(target)
        recent = ((write,) + ts.recent_writes)[:RECENT_WRITES] if write else ()
        ts = replace(ts, last_write_sha256=sha256, last_write_at=at.isoformat(),
                     recent_writes=recent, undone_write=None)
        return self.with_target(target, ts)


def target_key(target: str | Path) -> str:
    """The key of a target: its absolute real path (a symlinked config is keyed by its file)."""
    return os.path.realpath(os.path.expanduser(os.fspath(target)))


# --- (de)serialisation ------------------------------------------------------------------------


def _provider_to_json(ps: ProviderState) -> ProviderStateJSON:
    return {
        "managed": {k: copy.deepcopy(dict(v)) for k, v in sorted(ps.managed.items())},
        "tombstones": sorted(ps.tombstones),
        "misses": dict(sorted(ps.misses.items())),
        "kind": ps.kind,
        "last_success": ps.last_success,
        "last_error": ps.last_error,
        "last_error_label": ps.last_error_label,
        "failures": ps.failures,
        "failing_since": ps.failing_since,
        "served": ps.served,
        "served_ids": list(ps.served_ids),
        "whitelist": list(ps.whitelist) if ps.whitelist is not None else None,
    }


def _target_to_json(ts: TargetState) -> TargetStateJSON:
    out: TargetStateJSON = {
        "providers": {pid: _provider_to_json(ps) for pid, ps in sorted(ts.providers.items())},
        "last_write_sha256": ts.last_write_sha256,
        "last_write_at": ts.last_write_at,
    }
    if ts.recent_writes:
        out["recent_writes"] = [write_to_json(w) for w in ts.recent_writes]
    if ts.undone_write is not None:
        out["undone_write"] = write_to_json(ts.undone_write)
    if ts.pending_sha256 is not None:
        out["pending_sha256"] = ts.pending_sha256
        out["pending"] = {pid: _provider_to_json(ps) for pid, ps in sorted(ts.pending.items())}
        if ts.pending_write is not None:
            out["pending_write"] = write_to_json(ts.pending_write)
    if ts.overlay is not None:
        out["overlay"] = ts.overlay
        out["in_overlay"] = ts.in_overlay
    return out


def to_json(state: State) -> StateJSON:
    return {
        "version": state.version,
        "targets": {path: _target_to_json(ts) for path, ts in sorted(state.targets.items())},
        "detected": {url: {"provider": d.provider, "target": d.target, "added_at": d.added_at,
                           "declined_at": d.declined_at}
                     for url, d in sorted(state.detected.items())},
    }


def _compact(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _provider_text(ps: ProviderState) -> str:
    """`ps` as compact JSON, encoded once per value: a ProviderState never changes, and a state
    saved after one provider's change shares every other provider's value with the one before
    (a 3,000-model provider is not encoded again because a neighbour added a model)."""
    text = ps.__dict__.get("_json")
    if text is None:
        text = _compact(_provider_to_json(ps))
        object.__setattr__(ps, "_json", text)  # a cache, not a field: eq and hash ignore it
    return str(text)


def _providers_text(providers: Mapping[str, ProviderState]) -> str:
    return "{" + ",".join(f"{_compact(pid)}:{_provider_text(ps)}"
                          for pid, ps in sorted(providers.items())) + "}"


def dumps(state: State) -> str:
    """The state file's text (compact JSON; `to_json` with json.dumps gives the same data)."""
    targets = []
    for path, ts in sorted(state.targets.items()):
        rest: dict[str, Any] = dict(_target_to_json(replace(ts, providers=_frozen(), pending=_frozen())))
        del rest["providers"]
        rest.pop("pending", None)
        parts = [f'"providers":{_providers_text(ts.providers)}']
        if ts.pending_sha256 is not None:
            parts.append(f'"pending":{_providers_text(ts.pending)}')
        tail = _compact(rest)[1:-1]
        targets.append(f"{_compact(path)}:{{{','.join(parts + ([tail] if tail else []))}}}")
    rest_of_state = _compact({k: v for k, v in to_json(replace(state, targets=_frozen())).items()
                              if k != "targets"})
    return '{"targets":{' + ",".join(targets) + "}," + rest_of_state[1:]


def _provider_from_json(raw: object, where: str) -> ProviderState:
    d: dict[str, Any] = _want(raw, dict, where)
    managed = _want(d.get("managed", {}), dict, f"{where}.managed")
    for mid, entry in managed.items():
        _want(entry, dict, f"{where}.managed.{mid}")
    misses = _want(d.get("misses", {}), dict, f"{where}.misses")
    for mid, n in misses.items():
        _want(n, int, f"{where}.misses.{mid}")
    wl = d.get("whitelist")
    return ProviderState(
        managed=_frozen(managed),
        tombstones=frozenset(_str_list(d.get("tombstones", []), f"{where}.tombstones")),
        misses=_frozen(misses),
        kind=_opt_str(d.get("kind"), f"{where}.kind"),
        last_success=_opt_str(d.get("last_success"), f"{where}.last_success"),
        last_error=_opt_str(d.get("last_error"), f"{where}.last_error"),
        last_error_label=_opt_str(d.get("last_error_label"), f"{where}.last_error_label"),
        failures=_want(d.get("failures", 0), int, f"{where}.failures"),
        failing_since=_opt_str(d.get("failing_since"), f"{where}.failing_since"),
        served=_want(d.get("served", 0), int, f"{where}.served"),
        served_ids=tuple(_str_list(d.get("served_ids", []), f"{where}.served_ids")),
        whitelist=None if wl is None else tuple(_str_list(wl, f"{where}.whitelist")),
    )


def from_json(doc: Mapping[str, Any]) -> State:
    """A State from a current-version document; ValueError when its shape is wrong."""
    targets: dict[str, TargetState] = {}
    for path, raw in _want(doc.get("targets", {}), dict, "targets").items():
        t: dict[str, Any] = _want(raw, dict, f"targets[{path}]")
        provs = _want(t.get("providers", {}), dict, f"targets[{path}].providers")
        targets[path] = TargetState(
            providers=_frozen({pid: _provider_from_json(p, f"{path}: {pid}")
                               for pid, p in provs.items()}),
            last_write_sha256=_opt_str(t.get("last_write_sha256"), "last_write_sha256"),
            last_write_at=_opt_str(t.get("last_write_at"), "last_write_at"),
            recent_writes=tuple(
                w for i, raw_w in enumerate(_want(t.get("recent_writes", []), list, "recent_writes"))
                if (w := write_from_json(raw_w, f"{path}: recent_writes[{i}]")) is not None),
            undone_write=write_from_json(t.get("undone_write"), f"{path}: undone_write"),
            pending_sha256=_opt_str(t.get("pending_sha256"), "pending_sha256"),
            pending=_frozen({pid: _provider_from_json(p, f"{path}: pending {pid}")
                             for pid, p in _want(t.get("pending", {}), dict, "pending").items()}),
            overlay=_opt_str(t.get("overlay"), "overlay"),
            in_overlay=_want(t.get("in_overlay", False), bool, "in_overlay"),
            pending_write=write_from_json(t.get("pending_write"), f"{path}: pending_write"),
        )
    detected: dict[str, Detected] = {}
    for url, raw in _want(doc.get("detected", {}), dict, "detected").items():
        d: dict[str, Any] = _want(raw, dict, f"detected[{url}]")
        detected[url] = Detected(
            provider=_want(d.get("provider"), str, f"detected[{url}].provider"),
            target=_want(d.get("target"), str, f"detected[{url}].target"),
            added_at=_want(d.get("added_at"), str, f"detected[{url}].added_at"),
            declined_at=_opt_str(d.get("declined_at"), f"detected[{url}].declined_at"),
        )
    return State(targets=_frozen(targets), detected=_frozen(detected))
