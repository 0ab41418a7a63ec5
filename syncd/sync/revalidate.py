"""Revalidating a target after a change on disk: tombstones for hand deletions, warnings for unserved IDs."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from syncd.providers.blocks import custom_providers, models_of
from syncd.report import ProviderReport, Status, TargetReport
from syncd.settings import Settings
from syncd.sync.documents import read_parsed
from syncd.sync.layers import merged_block
from syncd.sync.locks import target_lock
from syncd.sync.outcome import unserved_ids, unserved_warnings
from syncd.sync.overlay import layered_view, placed_only
from syncd.sync.plan import plan_provider, protected_models
from syncd.sync.record import log_undone
from syncd.sync.stale import judge, settle, settled
from syncd.sync.state import load_state, save_state, state_file


def revalidate(
    target: Path, settings: Settings, state_dir: Path,
    known: Mapping[str, frozenset[str]] | None = None,
) -> TargetReport:
    """Plan every provider of `target` without a fetch and keep what that learns.

    The file is read holding the state lock, so the plan sees the file and the state as one: a
    syncd write lands (its pending record included) wholly before or wholly after this read.
    `known`: provider id -> unserved IDs already reported; only the others get a "did you mean"
    (a `difflib` search over a long list is the dear part of a revalidation).
    Raises TargetError when a file cannot be read, JsoncError when the target does not parse and
    TargetParseError when its overlay does not.
    """
    reports: list[ProviderReport] = []
    with target_lock(state_file(), state_dir):
        snap, data = read_parsed(target)
        state = load_state()
        # what OpenCode merges: the target and the overlay that may hold syncd's models
        layers, home_sha256, fresh = layered_view(target, settings, state, snap.text)
        state = settled(state, target, data, home_sha256)
        # a stale buffer's save is judged in place only (an overlay's writes keep no record)
        judged = judge(data, home_sha256, state, target) if len(layers.docs) == 1 else None
        if judged is not None:
            state = settle(state, target, judged)
            if judged.undid:
                log_undone(target, judged)
        for pid, block in custom_providers(data).items():
            ps = state.provider(target, pid)
            ps = placed_only(ps, layers, pid) if fresh else ps
            view = merged_block(layers, pid, block)
            plan = plan_provider(
                current=view.get("models"), fetched=None, state=ps,
                policy=settings.policy(pid), protected=protected_models(data, pid),
                catalog_has_provider=False, block=view,
            )
            state = state.with_provider(target, pid, plan.state)
            missing = unserved_ids(models_of(view) or {}, plan.state)
            said = (known or {}).get(pid, frozenset())
            warnings = unserved_warnings([m for m in missing if m not in said], plan.state)
            if plan.error is not None:
                warnings = (*warnings, plan.error)
            back = judged.back.get(pid, ()) if judged is not None else ()
            reports.append(ProviderReport(pid, Status.OK, kind=ps.kind, served=ps.served,
                                          tombstoned=plan.tombstoned, restored=back,
                                          warnings=warnings, unserved=missing))
        save_state(state)
    return TargetReport(str(target), providers=tuple(reports))
