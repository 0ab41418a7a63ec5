"""A fetch round of a target's providers, and the memo that lets an unchanged answer skip planning (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from syncd.model import FetchResult
from syncd.report import ProviderReport, Status, TargetReport
from syncd.sync.outcome import Fetched
from syncd.sync.records import ProviderState

# A quiet target is planned in full again at least this often: the state's `last_success` (what
# `syncd status` shows) is at most this old, and anything the memo cannot see is caught up.
QUIET_MAX_AGE = 60.0


@dataclass(frozen=True)
class Round:
    """Some of a target's providers asked once: their answers, ready to be planned.

    `report` is set instead when the target could not be read or parsed: there is nothing to
    plan, and that report says why. `text` is the target as read for the fetch (a dry run plans
    from it; a write plans from the file as it is when it is written).
    """

    target: Path
    fetched: tuple[Fetched, ...] = ()
    skipped: tuple[ProviderReport, ...] = ()
    text: str = ""
    report: TargetReport | None = None


def merge(rounds: Sequence[Round]) -> Round:
    """Rounds of one target as one: the newest answer of each provider, in the order first asked."""
    if len(rounds) == 1 or rounds[-1].report is not None:
        return rounds[-1]
    newest: dict[str, Fetched] = {}
    for r in rounds:
        for f in r.fetched:
            newest.pop(f.pid, None)  # keeps first-asked order for the report, newest answer
            newest[f.pid] = f
    skipped = {s.id: s for r in rounds for s in r.skipped if s.id not in newest}
    last = rounds[-1]
    return Round(last.target, tuple(newest.values()), tuple(skipped.values()), last.text)


@dataclass(frozen=True)
class Quiet:
    """A target whose last full cycles changed nothing: while the file, the state file and a
    provider's answer stay the same, planning that provider again would change nothing either."""

    file_sha256: str
    state_id: int  # the state file's generation after the last cycle (see `state_generation`)
    answers: Mapping[str, FetchResult] = field(default_factory=dict)
    reports: Mapping[str, ProviderReport] = field(default_factory=dict)
    since: Mapping[str, float] = field(default_factory=dict)  # when each was last planned in full


def quiet_after(
    report: TargetReport,
    fetched: Iterable[Fetched],
    learned: Mapping[str, tuple[ProviderState, ProviderState]],
    *,
    file_sha256: str,
    state_ids: tuple[int, int],
    now: float,
    previous: Quiet | None,
) -> Quiet | None:
    """The memo after a full cycle that wrote nothing, or None when it changed or learned anything.

    `learned`: provider id -> (its state before the plan, the state the plan left): a plan that
    counted a miss or grew a tombstone changed the state, and the same answer would count again.
    `state_ids`: the state file's generation before this cycle and after its record. The previous
    memo's providers stay remembered when neither the file nor anyone else touched the state.
    """
    if report.changed or report.error is not None:
        return None
    answers: dict[str, FetchResult] = {}
    reports: dict[str, ProviderReport] = {}
    by_id = {p.id: p for p in report.providers}
    for f in fetched:
        p = by_id.get(f.pid)
        before, after = learned.get(f.pid, (None, None))
        if (not isinstance(f.result, FetchResult) or p is None or p.status is not Status.OK
                or before is None or before != after or before.failures
                or p.warnings or p.tombstoned or p.restored or p.pending or p.withheld):
            return None
        answers[f.pid], reports[f.pid] = f.result, p
    since = dict.fromkeys(answers, now)
    before_id, after_id = state_ids
    if (previous is not None and previous.file_sha256 == file_sha256
            and previous.state_id == before_id):
        answers = {**previous.answers, **answers}
        reports = {**previous.reports, **reports}
        since = {**previous.since, **since}
    return Quiet(file_sha256, after_id, answers, reports, since)


def quiet_report(
    memo: Quiet | None, rnd: Round, *, file_sha256: str, state_id: int, now: float
) -> TargetReport | None:
    """The report of `rnd` without planning, when the memo shows the plan would change nothing."""
    if memo is None or memo.file_sha256 != file_sha256 or memo.state_id != state_id or not rnd.fetched:
        return None
    providers: list[ProviderReport] = []
    for f in rnd.fetched:
        before: Any = memo.answers.get(f.pid)
        if before is None or before != f.result or now - memo.since[f.pid] >= QUIET_MAX_AGE:
            return None
        providers.append(replace(memo.reports[f.pid], ms=f.ms))
    return TargetReport(str(rnd.target), providers=(*providers, *rnd.skipped))
