"""What the cycles tell the listener: each report's events, an invalid target once per error, its recovery."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from syncd.report import TargetReport

if TYPE_CHECKING:
    from syncd.notify.events import Event


class Announcer:
    """Composes events only when someone listens (`notify` given): `once` without it pays nothing.

    A target that stays invalid with the same error is announced once; when it is valid again,
    that news goes out with the next batch. Targets are named by a key the caller chooses (the
    engine's: the real path), so a symlinked config is one target.
    """

    def __init__(self, notify: Callable[[Sequence[Event]], Any] | None) -> None:
        self._notify = notify
        self._invalid: dict[str, str] = {}  # target key -> the error last announced for it
        self._pending: list[Event] = []  # found outside a cycle, sent with the next batch

    async def synced(self, report: TargetReport, previous_failures: Mapping[str, int]) -> None:
        """A cycle's report: models added and removed, providers failing or back."""
        if self._notify is not None:
            from syncd.notify.events import events_from_report

            await self._emit(events_from_report(report, previous_failures=previous_failures))

    async def invalid(self, key: str, report: TargetReport) -> TargetReport:
        """A target that cannot be synced (its error in `report`); returns `report`."""
        if self._invalid.get(key) != report.error:
            self._invalid[key] = report.error or ""
            if self._notify is not None:
                from syncd.notify.events import events_from_report

                await self._emit(events_from_report(report))
        return report

    def valid_again(self, key: str, path: str) -> None:
        if self._invalid.pop(key, None) is not None and self._notify is not None:
            from syncd.notify.events import events_for_valid_target

            self._pending.extend(events_for_valid_target(path))

    async def _emit(self, events: Sequence[Event]) -> None:
        batch = [*self._pending, *events]
        self._pending = []
        if batch and self._notify is not None:
            outcome = self._notify(batch)
            if asyncio.iscoroutine(outcome):
                await outcome
