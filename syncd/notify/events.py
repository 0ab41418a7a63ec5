"""Pure notification core: events from cycle reports, one message per target, and rate limiting."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypedDict

from syncd.report import ProviderReport, Status, TargetReport
from syncd.text import escape

UNREACHABLE_AFTER = 3  # consecutive failed runs before the user hears about it (DESIGN §4.11)
RATE_WINDOW = 30 * 60.0  # seconds: one error per provider and distinct error, and the flap window
REMINDER_WINDOW = 24 * 3600.0  # seconds: a withheld removal or suspicious ID is repeated daily
LIST_MAX = 3  # model IDs named per list before "and N more"
ID_MAX = 80  # characters of one model ID shown in a message
DETAIL_MAX = 200
RESTART_HINT = "Restart OpenCode to use them."


class EventType(StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    UPDATED = "updated"
    WITHHELD = "withheld"
    SUSPICIOUS = "suspicious"
    UNREACHABLE = "unreachable"
    RECOVERED = "recovered"
    TARGET_INVALID = "target_invalid"
    TARGET_VALID = "target_valid"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


_SEVERITY = {
    EventType.WITHHELD: Severity.WARNING,
    EventType.SUSPICIOUS: Severity.WARNING,
    EventType.UNREACHABLE: Severity.ERROR,
    EventType.TARGET_INVALID: Severity.ERROR,
}
_CHANGES = frozenset({EventType.ADDED, EventType.REMOVED, EventType.UPDATED})
_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}


class EventJSON(TypedDict):
    type: str
    severity: str
    target: str
    provider: str | None
    models: list[str]
    detail: str


class BatchJSON(TypedDict):
    target: str
    title: str
    body: str
    severity: str
    events: list[EventJSON]


def display_text(text: str, limit: int = ID_MAX) -> str:
    """Make untrusted text safe to show: control, bidi and invisible characters escaped, length capped."""
    return escape(text, limit)


@dataclass(frozen=True, slots=True)
class Event:
    """One thing the user should hear about; `models` and `detail` are already made safe to show."""

    type: EventType
    target: str
    provider: str | None = None
    models: tuple[str, ...] = ()
    detail: str = ""
    error_label: str | None = None  # FetchError.label for unreachable: part of "the same error"

    @property
    def severity(self) -> Severity:
        return _SEVERITY.get(self.type, Severity.INFO)

    def to_json(self) -> EventJSON:
        return {
            "type": self.type.value,
            "severity": self.severity.value,
            "target": self.target,
            "provider": self.provider,
            "models": list(self.models),
            "detail": self.detail,
        }


def _event(
    kind: EventType,
    target: str,
    provider: str | None,
    models: Iterable[str] = (),
    detail: str = "",
    error_label: str | None = None,
) -> Event:
    return Event(
        kind,
        target,
        provider,
        tuple(display_text(m) for m in models),
        display_text(detail, DETAIL_MAX),
        error_label,
    )


def _provider_events(
    target: str, p: ProviderReport, previous_failures: Mapping[str, int] | None
) -> list[Event]:
    if p.status is Status.SKIPPED:
        return []
    out = []
    for kind, ids in (
        (EventType.ADDED, p.added),
        (EventType.REMOVED, p.removed),
        (EventType.UPDATED, p.updated),
        (EventType.WITHHELD, p.withheld),
    ):
        if ids:
            out.append(_event(kind, target, p.id, ids))
    if p.suspicious:
        reasons = sorted({s.reason for s in p.suspicious})
        out.append(
            _event(
                EventType.SUSPICIOUS, target, p.id, (s.id for s in p.suspicious), "; ".join(reasons)
            )
        )
    # Without the previous count assume the report's count grew by one, as the state file does.
    before = (previous_failures or {}).get(p.id, max(p.failures - 1, 0))
    if p.status is Status.ERROR and before < UNREACHABLE_AFTER <= p.failures:
        out.append(
            _event(
                EventType.UNREACHABLE,
                target,
                p.id,
                detail=p.error or "",
                error_label=p.error_label or "failed",
            )
        )
    elif p.status is Status.OK and previous_failures is not None and before >= UNREACHABLE_AFTER:
        out.append(_event(EventType.RECOVERED, target, p.id))
    return out


def events_from_report(
    report: TargetReport, *, previous_failures: Mapping[str, int] | None = None
) -> list[Event]:
    """Every event one cycle of one target produced, in provider order.

    `previous_failures` maps provider ID to its consecutive-failure count *before* this cycle (the
    state file's value, read before the cycle wrote its own). With it, "unreachable" fires when the
    count crosses 3 and "recovered" when a provider that had crossed it is ok again; without it
    "unreachable" fires when the report says exactly 3 and "recovered" never fires.
    """
    if report.error:
        return [_event(EventType.TARGET_INVALID, report.path, None, detail=report.error)]
    out: list[Event] = []
    for p in report.providers:
        out.extend(_provider_events(report.path, p, previous_failures))
    return out


def events_for_invalid_target(path: str, line: int, col: int, msg: str) -> list[Event]:
    """The event of a target that no longer parses (revalidation after an edit)."""
    return [_event(EventType.TARGET_INVALID, path, None, detail=f"{path}:{line}:{col}: {msg}")]


def events_for_valid_target(path: str) -> list[Event]:
    """The event of a target that parses again after being reported invalid."""
    return [_event(EventType.TARGET_VALID, path, None)]


# --- message text ----------------------------------------------------------------------------


def _ids(models: Sequence[str]) -> str:
    shown = ", ".join(models[:LIST_MAX])
    more = len(models) - LIST_MAX
    return f"{shown} and {more} more" if more > 0 else shown


def _phrase(e: Event) -> str:
    n, ids = len(e.models), _ids(e.models)
    match e.type:
        case EventType.ADDED:
            return f"{n} new ({ids})"
        case EventType.REMOVED:
            return f"{n} gone ({ids})"
        case EventType.UPDATED:
            return f"{n} updated ({ids})"
        case EventType.WITHHELD:
            return f"kept {n} gone upstream because a default model points at it ({ids})"
        case EventType.SUSPICIOUS:
            return f"skipped {n} suspicious ({ids}: {e.detail})"
        case EventType.UNREACHABLE:
            return f"failing for {UNREACHABLE_AFTER} runs ({e.detail or e.error_label})"
        case EventType.RECOVERED:
            return "reachable again"
        case EventType.TARGET_INVALID:
            return f"{e.detail}. syncd leaves the file alone until it parses"
        case EventType.TARGET_VALID:
            return "parses again; syncing resumes"


def _short_path(path: str) -> str:
    parts = path.replace("\\", "/").rstrip("/").split("/")
    return "/".join(parts[-2:]) if len(parts) > 1 else path


def format_message(events: Sequence[Event]) -> tuple[str, str]:
    """(title, body) of one notification for the events of one target.

    One sentence per provider, e.g. "ollama: 2 new (a, b), 1 gone (c). Restart OpenCode to use
    them."; target-level events come first. The restart hint is added once, when models changed.
    """
    if not events:
        return ("", "")
    lines = []
    by_provider: dict[str | None, list[Event]] = {}
    for e in events:
        by_provider.setdefault(e.provider, []).append(e)
    for provider, evs in by_provider.items():
        text = ", ".join(_phrase(e) for e in evs)
        lines.append(f"{text}." if provider is None else f"{provider}: {text}.")
    body = "\n".join(lines)
    if any(e.type in _CHANGES for e in events):
        body += (" " if len(lines) == 1 else "\n") + RESTART_HINT
    return (_title(events), body)


def _title(events: Sequence[Event]) -> str:
    where = _short_path(events[0].target)
    types = {e.type for e in events}
    if EventType.TARGET_INVALID in types:
        what = "config does not parse"
    elif EventType.UNREACHABLE in types:
        what = "provider unreachable"
    elif types & _CHANGES:
        what = "models changed"
    else:
        what = "notice"
    return f"syncd: {what} in {where}"


@dataclass(frozen=True, slots=True)
class Batch:
    """One message: the events of one target from one cycle, with their text."""

    target: str
    events: tuple[Event, ...]
    title: str
    body: str

    @property
    def severity(self) -> Severity:
        return max((e.severity for e in self.events), key=_RANK.__getitem__, default=Severity.INFO)

    def to_json(self) -> BatchJSON:
        return {
            "target": self.target,
            "title": self.title,
            "body": self.body,
            "severity": self.severity.value,
            "events": [e.to_json() for e in self.events],
        }


def batch_events(events: Iterable[Event]) -> list[Batch]:
    """Group events into one Batch per target, keeping first-seen order."""
    grouped: dict[str, list[Event]] = {}
    for e in events:
        grouped.setdefault(e.target, []).append(e)
    return [Batch(t, tuple(evs), *format_message(evs)) for t, evs in grouped.items()]


# --- rate limiting ---------------------------------------------------------------------------

_PAIRS = {
    EventType.RECOVERED: EventType.UNREACHABLE,
    EventType.TARGET_VALID: EventType.TARGET_INVALID,
}
_DOWN = frozenset(_PAIRS.values())


@dataclass(slots=True)
class RateLimiter:
    """Decides which events reach the sinks; pure: the caller passes `now` (seconds, monotonic).

    - Changes (added/removed/updated) always pass: each happens once.
    - "unreachable"/"invalid" pass at most once per `window` for the same target, provider and
      error (label, detail); "withheld"/"suspicious" describe a standing state that every cycle
      reports again, so the same ones pass at most once per `reminder`.
    - "recovered"/"valid again" pass only when the matching "unreachable"/"invalid" was sent:
      the user never hears "back" about a failure they were not told of.
    - Flapping: an "unreachable" within `window` of a sent "recovered" is held back. If the
      provider recovers again before the window ends both are dropped and the window starts over;
      otherwise `due()` releases it once the window is over, so one that stays down is reported.
    """

    window: float = RATE_WINDOW
    reminder: float = REMINDER_WINDOW
    _last_sent: dict[tuple[str, str | None, EventType, str], float] = field(default_factory=dict)
    _state: dict[tuple[str, str | None], tuple[EventType, float]] = field(default_factory=dict)
    _held: dict[tuple[str, str | None], tuple[Event, float]] = field(default_factory=dict)

    @staticmethod
    def _key(e: Event) -> tuple[str, str | None, EventType, str]:
        return (e.target, e.provider, e.type, f"{e.error_label}|{e.detail}|{','.join(e.models)}")

    def allow(self, event: Event, now: float) -> bool:
        if event.type in _CHANGES:
            return True
        where = (event.target, event.provider)
        last = self._state.get(where)
        if event.type in _PAIRS:
            if self._held.pop(where, None) and last:
                self._state[where] = (last[0], now)  # it flapped again: the window starts over
            if last is None or last[0] is not _PAIRS[event.type]:
                return False
            self._state[where] = (event.type, now)
            return True
        back_at = last[1] if last and last[0] is EventType.RECOVERED else None
        # flapping: a failure soon after a "recovered" waits to see whether it stays down
        if (
            event.type is EventType.UNREACHABLE
            and back_at is not None
            and now - back_at < self.window
        ):
            self._held[where] = (event, back_at + self.window)
            return False
        sent = self._last_sent.get(self._key(event))
        if sent is not None and now - sent < self._window_of(event.type):
            return False
        self._mark(event, now)
        return True

    def _window_of(self, kind: EventType) -> float:
        return self.window if kind in _DOWN else self.reminder

    def due(self, now: float) -> list[Event]:
        """Held-back failures whose flap window is over and that did not heal: send them now."""
        ready = [(w, e) for w, (e, at) in self._held.items() if now >= at]
        for where, e in ready:
            del self._held[where]
            self._mark(e, now)
        return [e for _, e in ready]

    def _mark(self, event: Event, now: float) -> None:
        self._last_sent[self._key(event)] = now
        if len(self._last_sent) > 1024:  # a long-running daemon must not grow without bound
            keep = max(self.window, self.reminder)
            self._last_sent = {k: t for k, t in self._last_sent.items() if now - t < keep}
        if event.type in _DOWN:
            self._state[(event.target, event.provider)] = (event.type, now)
