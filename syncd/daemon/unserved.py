"""Which user-owned model IDs each provider does not serve, logged when that changes, not on every pass."""

from __future__ import annotations

from pathlib import Path

import structlog

from syncd.report import TargetReport

log = structlog.get_logger("syncd.daemon")


class Unserved:
    """What revalidations have said per target and provider; each change is said once.

    An ID is logged (with its "did you mean", which the revalidation composes for new IDs only)
    when it becomes unserved, and once more when it is served again or its entry is gone.
    """

    def __init__(self) -> None:
        self._said: dict[Path, dict[str, frozenset[str]]] = {}
        self._notes: dict[Path, set[tuple[str, str]]] = {}  # other warnings of the last pass

    def known(self, target: Path) -> dict[str, frozenset[str]]:
        return dict(self._said.get(target, {}))

    def said(self, target: Path, report: TargetReport) -> None:
        """Log what changed since the last revalidation of `target`, and remember it."""
        before = self._said.get(target, {})
        notes = self._notes.get(target, set())
        now: dict[str, frozenset[str]] = {}
        for p in report.providers:
            for warning in p.warnings:  # the new unserved IDs, and notes like a bad `models`
                if (p.id, warning) not in notes:
                    log.warning(warning, target=str(target), provider=p.id)
            current = frozenset(p.unserved)
            back = sorted(before.get(p.id, frozenset()) - current)
            if back:
                log.info("no longer unserved (served again, or the entry is gone)",
                         target=str(target), provider=p.id, models=back)
            if current:
                now[p.id] = current
        self._notes[target] = {(p.id, w) for p in report.providers for w in p.warnings}
        if now:
            self._said[target] = now
        else:
            self._said.pop(target, None)
