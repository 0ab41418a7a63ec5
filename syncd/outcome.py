"""Turns one cycle's fetch results and plans into the reports the CLI prints and notifications read (pure)."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from syncd.errors import FetchError, SyncdError
from syncd.model import FetchResult, ProviderSpec
from syncd.plan import ProviderPlan
from syncd.report import ProviderReport, Status, TargetReport
from syncd.state import ProviderState, State

SUGGESTIONS = 3


@dataclass
class Fetched:
    """The outcome of fetching one provider of one target, before planning."""

    pid: str
    spec: ProviderSpec | None
    result: FetchResult | FetchError
    ms: int


def target_report(
    path: str,
    fetched: list[Fetched],
    plans: Mapping[str, ProviderPlan],
    skipped: list[ProviderReport],
    before: State,
    old_text: str,
    new_text: str | None,
    *,
    with_diff: bool = False,
) -> TargetReport:
    """The report of one target; the unified diff (slow on a megabyte file) only when asked for."""
    providers: list[ProviderReport] = []
    for f in fetched:
        plan = plans.get(f.pid)
        providers.append(provider_report(path, f, plan, before))
    changed = new_text is not None and new_text != old_text
    diff = ""
    if changed and with_diff and new_text is not None:
        diff = "".join(
            difflib.unified_diff(
                old_text.splitlines(keepends=True),
                new_text.splitlines(keepends=True),
                fromfile=path,
                tofile=path,
            )
        )
    return TargetReport(path, changed=changed, providers=tuple(providers + skipped), diff=diff)

def provider_report(
    path: str, f: Fetched, plan: ProviderPlan | None, before: State
) -> ProviderReport:
    prior = before.provider(path, f.pid)
    if isinstance(f.result, FetchError):
        exc = f.result
        return ProviderReport(
            f.pid,
            Status.ERROR,
            kind=prior.kind,
            error=exc.reason,
            error_label=exc.label,
            retry_after=getattr(exc, "retry_after", None),
            failures=prior.failures + 1,
            tombstoned=plan.tombstoned if plan else (),
            ms=f.ms,
        )
    res = f.result
    served = len({m.id for m in res.models} | {s.id for s in res.suspicious})
    if plan is None:
        return ProviderReport(f.pid, Status.OK, kind=str(res.kind), served=served, ms=f.ms)
    return ProviderReport(
        f.pid,
        Status.OK,
        kind=str(res.kind),
        served=served,
        added=plan.added,
        removed=plan.removed,
        updated=plan.updated,
        skipped=plan.skipped,
        withheld=plan.withheld,
        pending=plan.pending,
        tombstoned=plan.tombstoned,
        suspicious=res.suspicious,
        warnings=plan.warnings,
        ms=f.ms,
    )

def failed_all(fetched: list[Fetched], exc: SyncdError) -> tuple[ProviderReport, ...]:
    return tuple(
        ProviderReport(f.pid, Status.ERROR, error=f"not written: {exc}", ms=f.ms) for f in fetched
    )


def unserved_warnings(models: Mapping[str, Any], state: ProviderState) -> tuple[str, ...]:
    """"did you mean" lines for user-owned model IDs the last successful fetch did not list."""
    served = state.served_ids
    if not served:
        return ()
    served_set = set(served)
    out = []
    for mid in models:
        if mid in state.managed or mid in served_set:
            continue
        close = difflib.get_close_matches(mid, served, n=SUGGESTIONS, cutoff=0.5)
        hint = f"; did you mean {', '.join(f'`{c}`' for c in close)}?" if close else ""
        out.append(f"`{mid}` is not served by the provider{hint}")
    return tuple(out)
