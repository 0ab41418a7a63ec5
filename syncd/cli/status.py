"""`syncd status`: per provider of every target, its state (ok, failing, never reached, disabled),
counts and next run, and the local runtimes the user declined, as text or JSON."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from typing import Any

from syncd.cli.summary import fit, home, wrapped
from syncd.report import plural
from syncd.sync.prune import Forgotten
from syncd.sync.records import ProviderState, State

_HEAD = (f"  {'provider':<16} {'state':<18} {'last success':<16} {'served':>6} "
         f"{'managed':>7} {'deleted':>7}")


class Health(StrEnum):
    OK = "ok"
    FAILING = "failing"
    NEVER = "never reached"
    DISABLED = "disabled"


def health(ps: ProviderState, enabled: bool) -> Health:
    if not enabled:
        return Health.DISABLED
    if ps.last_success is None:
        return Health.NEVER
    return Health.FAILING if ps.last_error else Health.OK


def _row(target: str, pid: str, ps: ProviderState, enabled: bool, next_run: str | None,
         in_file: bool | None, models_in: str) -> dict[str, Any]:
    return {
        "in_file": in_file,
        "next_run": next_run,
        "target": target,
        "models_in": models_in,  # the overlay file in write mode "overlay"
        "provider": pid,
        "state": str(health(ps, enabled)),
        "kind": ps.kind,
        "last_success": ps.last_success,
        "last_error": ps.last_error,
        "failures": ps.failures,
        "failing_since": ps.failing_since,
        "served": ps.served,
        "managed": len(ps.managed),
        "tombstones": sorted(ps.tombstones),
    }


def status_rows(state: State, in_files: Mapping[str, Sequence[str] | None],
                enabled: Callable[[str], bool], next_runs: Mapping[str, Mapping[str, str]],
                homes: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """A row per provider the state knows, and per provider of a target it never synced.

    `in_files`: target key -> the custom provider ids in the file now (None: it does not read
    or parse; a target left out is one that no longer exists). `homes`: target key -> the
    overlay that holds its models.
    """
    homes = homes or {}
    rows = []
    keys = [*state.targets, *(k for k in in_files if k not in state.targets)]
    for target in keys:
        known = state.target(target).providers
        now = in_files.get(target, ())
        for pid in [*known, *(p for p in now or () if p not in known)]:
            rows.append(_row(target, pid, state.provider(target, pid), enabled(pid),
                             next_runs.get(target, {}).get(pid),
                             None if now is None else pid in now, homes.get(target, target)))
    return rows


def _declined(state: State) -> list[dict[str, Any]]:
    return [{"provider": d.provider, "base_url": url, "target": d.target,
             "declined_at": d.declined_at, "undo": f"syncd restore {d.provider}"}
            for url, d in state.detected.items() if d.declined_at is not None]


def _forgotten(pruned: Sequence[Forgotten]) -> list[dict[str, Any]]:
    return [{"target": f.target, "provider": f.provider, "reason": f.reason} for f in pruned]


def status_json(rows: list[dict[str, Any]], state: State,
                pruned: Sequence[Forgotten] | None = None) -> str:
    """`syncd status --json`; `next_run` is null unless a daemon runs."""
    doc: dict[str, Any] = {"providers": rows, "declined": _declined(state)}
    if pruned is not None:
        doc["pruned"] = _forgotten(pruned)
    return json.dumps(doc, ensure_ascii=False) + "\n"


def _when(iso: str | None) -> str:
    return (iso or "")[:16].replace("T", " ")


def _state_cell(r: dict[str, Any]) -> str:
    if r["state"] == Health.FAILING:
        return f"failing ({plural(r['failures'], 'time')})"
    return str(r["state"])


def _notes(r: dict[str, Any]) -> list[str]:
    if r["in_file"] is False:
        return ["no longer in the file (`syncd status --prune` forgets it)"]
    since = f" since {_when(r['failing_since'])}" if r["failing_since"] else ""
    if r["state"] == Health.FAILING:
        return [f"failing{since}: {r['last_error']}"]
    if r["state"] == Health.NEVER:
        if r["failures"]:
            return [f"{plural(r['failures'], 'try', 'tries')} failed{since}: {r['last_error']}"]
        return ["not synced yet: run `syncd once` (or start the service)"]
    return []


def format_status(rows: list[dict[str, Any]], state: State,
                  pruned: Sequence[Forgotten] | None = None) -> str:
    out: list[str] = []
    if pruned is not None:
        out += [f"forgot {home(f.target)}" + (f" provider {f.provider}" if f.provider else "")
                + f": {f.reason}" for f in pruned] or ["nothing to forget"]
    if not rows:
        out.append("syncd has not synced anything yet: run `syncd once` (or install the service)")
    else:
        out.append(_HEAD)
    for target in dict.fromkeys(r["target"] for r in rows):
        out.append(home(target))
        models_in = next(r["models_in"] for r in rows if r["target"] == target)
        if models_in != target:
            out.append(fit(f"  syncd's models are in {home(models_in)} (overlay)"))
        for r in (r for r in rows if r["target"] == target):
            pid = r["provider"] if len(r["provider"]) <= 16 else r["provider"][:15] + "…"
            out.append(fit(f"  {pid:<16} {_state_cell(r):<18} {_when(r['last_success']) or '-':<16} "
                           f"{r['served']:>6} {r['managed']:>7} {len(r['tombstones']):>7}"))
            for note in _notes(r):
                out += wrapped(note)
            if r["next_run"]:
                out.append(f"    next run {r['next_run'][:19].replace('T', ' ')} (daemon)")
    declined = _declined(state)
    if declined:
        out.append("local runtimes you declined (you deleted the block syncd added; it stays away):")
        for d in declined:
            out.append(fit(f"  {d['provider']:<16} {d['base_url']}, declined "
                           f"{_when(d['declined_at'])}"))
            out.append(f"  {'':<16} to have it added again: {d['undo']}")
    return "\n".join(out) + "\n"


def run_status(*, as_json: bool, prune: bool) -> str:
    """`syncd status [--json] [--prune]`: the state, today's targets and the daemon's schedule."""
    from pathlib import Path

    from syncd import paths
    from syncd.daemon import schedule_file
    from syncd.settings import load_settings
    from syncd.sync.overlay import overlay_homes
    from syncd.sync.prune import prune_state
    from syncd.sync.state import load_state
    from syncd.sync.targets import providers_in, resolve_targets

    settings = load_settings()
    pruned = prune_state(paths.state_dir()) if prune else None
    state = load_state()
    targets = [*map(Path, state.targets), *resolve_targets(None, settings.configs)]
    rows = status_rows(state, providers_in(targets), lambda pid: settings.policy(pid).enabled,
                       schedule_file.read(paths.state_dir()), overlay_homes(state))
    return (status_json if as_json else format_status)(rows, state, pruned)
