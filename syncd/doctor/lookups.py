"""Doctor's checks of what OpenCode looks up at start: the models configs name, the runtimes nobody uses."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from syncd.doctor.checks import Check, Status, ok
from syncd.model import FetchResult
from syncd.providers.blocks import custom_providers, models_of
from syncd.providers.detect import Runtime, unclaimed
from syncd.report import plural
from syncd.sync.outcome import unserved
from syncd.sync.refs import ModelRef, model_refs

NAME = "model refs"
SUGGESTIONS = 3


@dataclass
class _Provider:
    """One provider id as OpenCode sees it after merging every file."""

    custom: bool = False  # some file gives it an options.baseURL
    entries: dict[str, str] = field(default_factory=dict)  # model key -> the ID sent upstream


def _merged(configs: Sequence[tuple[Path, object]]) -> dict[str, _Provider]:
    out: dict[str, _Provider] = {}
    for _, data in configs:
        providers = data.get("provider") if isinstance(data, Mapping) else None
        if not isinstance(providers, Mapping):
            continue
        custom = custom_providers(data)
        for pid, block in providers.items():
            if not isinstance(block, Mapping):
                continue
            p = out.setdefault(pid, _Provider())
            p.custom = p.custom or pid in custom
            models = block.get("models")
            for key, entry in (models.items() if isinstance(models, Mapping) else ()):
                upstream = entry.get("id") if isinstance(entry, Mapping) else None
                p.entries[key] = upstream if isinstance(upstream, str) and upstream else key
    return out


def _where(ref: ModelRef, path: Path) -> str:
    return f"`{ref.key}` in {path}"


def _closest(word: str, candidates: Sequence[str]) -> list[str]:
    return difflib.get_close_matches(word, list(candidates), n=SUGGESTIONS, cutoff=0.4)


def _closest_text(word: str, candidates: Sequence[str], what: str) -> str:
    close = _closest(word, candidates)
    return f"; closest {what}: {', '.join(f'`{c}`' for c in close)}" if close else ""


def _one(ref: ModelRef, path: Path, p: _Provider | None, served: Sequence[str] | None,
         known: Callable[[str], bool], custom_ids: Sequence[str]) -> Check | None:
    """The finding for one reference, or None when OpenCode will find it."""
    where = _where(ref, path)
    if p is None:
        if known(ref.provider):
            return None  # one of OpenCode's own providers: its catalog's business
        hint = _closest_text(ref.provider, custom_ids, "provider IDs")
        return Check(NAME, Status.FAIL,
                     f"{where} names `{ref.full}`, but no config defines provider "
                     f"`{ref.provider}` (OpenCode: provider not found){hint}",
                     f"fix the provider ID, or `syncd add {ref.provider} BASE_URL`")
    if not p.custom:
        return None  # a built-in provider with overrides; OpenCode's catalog lists its models
    if ref.model not in p.entries:
        if served is not None and ref.model in served:
            return Check(NAME, Status.FAIL,
                         f"{where} names `{ref.full}`, which has no entry in "
                         f"provider.{ref.provider}.models (OpenCode: model not found); the "
                         "provider serves it", "run `syncd once`: it writes every ID a config names")
        pool = served if served is not None else list(p.entries)
        hint = _closest_text(ref.model, pool, "served IDs" if served is not None else "entries")
        return Check(NAME, Status.FAIL,
                     f"{where} names `{ref.full}`, which has no entry in "
                     f"provider.{ref.provider}.models (OpenCode: model not found){hint}",
                     f"use an ID the provider serves in `{ref.key}`")
    upstream = p.entries[ref.model]
    if served is not None and upstream not in served:
        hint = _closest_text(upstream, served, "served IDs")
        return Check(NAME, Status.FAIL,
                     f"{where} names `{ref.full}`; its entry asks the server for `{upstream}`, "
                     f"which it does not serve{hint}",
                     f"pull/load `{upstream}` on the server, or point `{ref.key}` at a served ID")
    return None


def check_references(configs: Sequence[tuple[Path, object]], served: Mapping[str, Sequence[str]],
                     known: Callable[[str], bool]) -> list[Check]:
    """`model`, `small_model`, `agent.*.model`, `mode.*.model` of every merged config (DESIGN §1.1)
    against the merged provider entries and, where doctor reached the provider, what it serves."""
    providers = _merged(configs)
    custom_ids = [pid for pid, p in providers.items() if p.custom]
    out: list[Check] = []
    seen: set[tuple[str, str]] = set()
    total = 0
    for path, data in configs:
        for ref in model_refs(data):
            total += 1
            if (ref.key, ref.full) in seen:
                continue  # a later file repeating the same value: one finding is enough
            seen.add((ref.key, ref.full))
            found = _one(ref, path, providers.get(ref.provider), served.get(ref.provider),
                         known, custom_ids)
            if found is not None:
                out.append(found)
    if out:
        return out
    if not total:
        return [ok(NAME, "no config sets model, small_model or an agent's model")]
    return [ok(NAME, f"{plural(total, 'model reference')} (model, small_model, agents, modes) "
                     "name entries OpenCode will find")]


def check_runtimes(found: Sequence[Runtime], configs: Sequence[tuple[Path, object]],
                   *, detect: bool, probed: Sequence[Runtime],
                   declined: Mapping[str, str]) -> list[Check]:
    """A local runtime that answers while no provider of any merged config points at it;
    `declined`: base URL -> provider id of the blocks the user deleted after detection added them."""
    loose = unclaimed(found, configs)
    out: list[Check] = []
    for rt in [rt for rt in loose if rt.base_url in declined]:
        out.append(ok("runtimes", f"{rt.name} answers at {rt.root}; you deleted the block syncd "
                      f"added for it, so syncd leaves it alone (`syncd restore "
                      f"{declined[rt.base_url]}` lets syncd add it again)"))
    loose = [rt for rt in loose if rt.base_url not in declined]
    if out and not loose:
        return out
    if not loose:
        where = ", ".join(f":{rt.base_url.rsplit(':', 1)[-1].split('/')[0]}" for rt in probed)
        if found:
            return [ok("runtimes", f"every local runtime that answers has a provider "
                                   f"({', '.join(rt.name for rt in found)})")]
        return [ok("runtimes", f"no local runtime answers (probed {where or 'nothing'})")]
    for rt in loose:
        add = f"`syncd add {rt.provider_id} {rt.base_url}`"
        fix = (f"`syncd once` adds a provider block for it, or {add}" if detect
               else f"{add} (detection is off)")
        out.append(Check("runtimes", Status.WARN,
                         f"{rt.name} answers at {rt.root}, but no provider points at it: "
                         "OpenCode cannot use its models", fix))
    return out


def served_ids(result: FetchResult) -> list[str]:
    """Every ID a fetch lists, refused ones included (they are served, only not written)."""
    return [m.id for m in result.models] + [s.id for s in result.suspicious]


def check_models(pid: str, block: Mapping[str, Any], result: FetchResult,
                 managed: Mapping[str, Any]) -> Check:
    """Hand-written entries of a provider (those syncd does not manage) that it does not serve."""
    name = f"models {pid}"
    models = models_of(block) or {}
    served = served_ids(result)
    if not served:
        return Check(name, Status.WARN, "the provider serves no models; nothing to compare",
                     "load or pull a model on the server")
    mine = sum(1 for key in models if key in managed)
    hand = plural(len(models) - mine, "hand-written entry", "hand-written entries")
    counts = f"{hand}, {mine} managed by syncd"
    missing = unserved(models, managed, served)
    if not missing:
        if len(models) == mine:
            return ok(name, f"no hand-written entries, {mine} managed by syncd")
        which = "the hand-written one is" if len(models) - mine == 1 else "every hand-written one is"
        return ok(name, f"{counts}; {which} served")
    parts = [f"`{mid}`" + (f" (closest: {', '.join(close)})" if close else "")
             for mid, close in missing[:3]]
    more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
    return Check(name, Status.FAIL, f"{counts}; not served: {'; '.join(parts)}{more}",
                 f"fix the {'IDs' if len(missing) > 1 else 'ID'} in provider.{pid}.models, "
                 "or pull/load the model")
