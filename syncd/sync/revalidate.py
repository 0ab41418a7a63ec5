"""Revalidating a target after a change on disk: tombstones for hand deletions, warnings for unserved IDs."""

from __future__ import annotations

from pathlib import Path

from syncd import jsonc
from syncd.providers.blocks import custom_providers, models_of
from syncd.report import ProviderReport, Status, TargetReport
from syncd.settings import Settings
from syncd.sync.locks import target_lock
from syncd.sync.outcome import unserved_warnings
from syncd.sync.plan import plan_provider, protected_models
from syncd.sync.state import load_state, save_state, state_file
from syncd.sync.store import read_target


def revalidate(target: Path, settings: Settings, state_dir: Path) -> TargetReport:
    """Plan every provider of `target` without a fetch and keep what that learns.

    Raises TargetError when the file cannot be read and JsoncError when it does not parse.
    """
    snap = read_target(target)
    data = jsonc.parse(snap.text)
    reports: list[ProviderReport] = []
    with target_lock(state_file(), state_dir):
        state = load_state().settled(target, snap.sha256)
        for pid, block in custom_providers(data).items():
            ps = state.provider(target, pid)
            plan = plan_provider(
                current=models_of(block), fetched=None, state=ps,
                policy=settings.policy(pid), protected=protected_models(data, pid),
                catalog_has_provider=False, block=block,
            )
            state = state.with_provider(target, pid, plan.state)
            warnings = unserved_warnings(models_of(block) or {}, plan.state)
            reports.append(ProviderReport(pid, Status.OK, kind=ps.kind, served=ps.served,
                                          tombstoned=plan.tombstoned, warnings=warnings))
        save_state(state)
    return TargetReport(str(target), providers=tuple(reports))
