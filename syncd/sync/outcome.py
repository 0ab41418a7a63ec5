"""Turns one cycle's fetch results and plans into the reports the CLI prints and notifications read (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from syncd.errors import FetchError, SyncdError
from syncd.model import FetchResult
from syncd.report import ProviderReport, Status, TargetReport
from syncd.sync.plan import ProviderPlan
from syncd.sync.records import ProviderState, State

SUGGESTIONS = 3


@dataclass
class Fetched:
    """The outcome of fetching one provider of one target, before planning."""

    pid: str
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
    diff = unified_diff(path, old_text, new_text) if changed and with_diff and new_text is not None else ""
    return TargetReport(path, changed=changed, providers=tuple(providers + skipped), diff=diff)


def unified_diff(path: str, old_text: str, new_text: str) -> str:
    import difflib  # only a diff (--dry-run, the overlay) needs it: a plain `once` does not load it

    return "".join(difflib.unified_diff(old_text.splitlines(keepends=True),
                                        new_text.splitlines(keepends=True), fromfile=path, tofile=path))

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
    if plan.error is not None:
        return ProviderReport(f.pid, Status.ERROR, kind=str(res.kind), error=plan.error,
                              error_label="config", served=served,
                              failures=prior.failures + 1, ms=f.ms)
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


def unserved_ids(models: Mapping[str, Any], state: ProviderState) -> tuple[str, ...]:
    """User-owned model IDs (as sent upstream: `id`, else the key) the last successful fetch did
    not list; none before a first successful fetch (nothing to compare with)."""
    if not state.served_ids:
        return ()
    served = set(state.served_ids)
    return tuple(m for m in _upstream_ids(models, state.managed) if m not in served)


def _upstream_ids(models: Mapping[str, Any], managed: Mapping[str, Any]) -> list[str]:
    out = []
    for key, entry in models.items():
        if key in managed:
            continue
        upstream = entry.get("id") if isinstance(entry, Mapping) else None
        out.append(upstream if isinstance(upstream, str) and upstream else key)
    return out


def unserved(models: Mapping[str, Any], managed: Mapping[str, Any], served: Sequence[str],
             cutoff: float = 0.4) -> list[tuple[str, list[str]]]:
    """User-owned model IDs the provider does not serve, each with the closest served IDs."""
    served_set = set(served)
    missing = [m for m in _upstream_ids(models, managed) if m not in served_set]
    return [(m, close_matches(m, served, cutoff)) for m in missing]


def close_matches(model_id: str, served: Sequence[str], cutoff: float) -> list[str]:
    import difflib  # only a "did you mean" needs it

    return difflib.get_close_matches(model_id, served, n=SUGGESTIONS, cutoff=cutoff)


def unserved_warnings(missing: Sequence[str], state: ProviderState) -> tuple[str, ...]:
    """"did you mean" lines for `missing` IDs (see `unserved_ids`), against what was served last."""
    out = []
    for mid in missing:
        close = close_matches(mid, state.served_ids, 0.5)
        hint = f"; did you mean {', '.join(f'`{c}`' for c in close)}?" if close else ""
        out.append(f"`{mid}` is not served by the provider{hint}")
    return tuple(out)
