"""Events from cycle reports, message text and rate limiting: the pure notification core."""

from __future__ import annotations

import json

from syncd.model import Skipped
from syncd.notify.events import (
    ID_MAX,
    LIST_MAX,
    RATE_WINDOW,
    REMINDER_WINDOW,
    RESTART_HINT,
    UNREACHABLE_AFTER,
    Event,
    EventType,
    RateLimiter,
    Severity,
    batch_events,
    display_text,
    events_for_invalid_target,
    events_for_valid_target,
    events_from_report,
    format_message,
)
from syncd.report import ProviderReport, Status, TargetReport

PATH = "/home/u/.config/opencode/opencode.jsonc"


def _report(*providers: ProviderReport, error: str | None = None) -> TargetReport:
    return TargetReport(PATH, changed=True, error=error, providers=providers)


def _down(pid: str, failures: int, label: str = "unreachable") -> ProviderReport:
    return ProviderReport(
        pid, Status.ERROR, error="connection refused", error_label=label, failures=failures
    )


def test_message_reads_like_the_issue_example() -> None:
    report = _report(
        ProviderReport(
            "ollama", Status.OK, added=("qwen3-coder:30b", "gemma4:e4b"), removed=("llama3:8b",)
        )
    )
    title, body = format_message(events_from_report(report))
    assert body == (
        "ollama: 2 new (qwen3-coder:30b, gemma4:e4b), 1 gone (llama3:8b). "
        "Restart OpenCode to use them."
    )
    assert "models changed" in title and "opencode/opencode.jsonc" in title


def test_long_lists_are_cut_with_and_n_more() -> None:
    ids = tuple(f"model-{i}" for i in range(LIST_MAX + 4))
    _, body = format_message(
        events_from_report(_report(ProviderReport("lm", Status.OK, added=ids)))
    )
    assert f"{len(ids)} new (" in body
    assert ", ".join(ids[:LIST_MAX]) + f" and {len(ids) - LIST_MAX} more)" in body
    assert ids[LIST_MAX] not in body


def test_one_line_per_provider_and_the_restart_hint_once() -> None:
    report = _report(
        ProviderReport("ollama", Status.OK, added=("a",)),
        ProviderReport("lmstudio", Status.OK, updated=("b",)),
        ProviderReport("idle", Status.OK, served=4),
    )
    _, body = format_message(events_from_report(report))
    lines = body.splitlines()
    assert lines == ["ollama: 1 new (a).", "lmstudio: 1 updated (b).", RESTART_HINT]


def test_quiet_cycle_and_skipped_providers_make_no_events() -> None:
    report = _report(
        ProviderReport("ollama", Status.OK, served=3),
        ProviderReport("work", Status.SKIPPED, added=("ignored",)),
    )
    assert events_from_report(report) == []
    assert batch_events([]) == []


def test_unreachable_fires_exactly_once_per_outage() -> None:
    seen = []
    previous = 0
    for failures in range(1, 8):
        events = events_from_report(
            _report(_down("ollama", failures)), previous_failures={"ollama": previous}
        )
        seen += [e for e in events if e.type is EventType.UNREACHABLE]
        previous = failures
    assert len(seen) == 1
    assert seen[0].severity is Severity.ERROR and seen[0].error_label == "unreachable"
    assert "connection refused" in format_message(seen)[1]


def test_unreachable_without_previous_counts_fires_at_the_threshold_only() -> None:
    fired = [
        n
        for n in range(1, 7)
        if any(e.type is EventType.UNREACHABLE for e in events_from_report(_report(_down("x", n))))
    ]
    assert fired == [UNREACHABLE_AFTER]


def test_unreachable_fires_when_the_count_jumps_past_the_threshold() -> None:
    events = events_from_report(_report(_down("x", 5)), previous_failures={"x": 1})
    assert [e.type for e in events] == [EventType.UNREACHABLE]


def test_recovered_only_after_a_reported_outage() -> None:
    ok = _report(ProviderReport("ollama", Status.OK, served=2))
    after_outage = events_from_report(ok, previous_failures={"ollama": UNREACHABLE_AFTER + 2})
    after_blip = events_from_report(ok, previous_failures={"ollama": UNREACHABLE_AFTER - 1})
    assert [e.type for e in after_outage] == [EventType.RECOVERED]
    assert after_blip == []
    assert events_from_report(ok) == []  # unknown history: never claim a recovery


def test_target_error_is_one_invalid_event() -> None:
    msg = f"{PATH}:12:5: expected ','"
    events = events_from_report(_report(ProviderReport("a", Status.OK, added=("m",)), error=msg))
    assert [e.type for e in events] == [EventType.TARGET_INVALID]
    assert msg in format_message(events)[1]


def test_revalidation_events_name_file_line_and_col() -> None:
    (bad,) = events_for_invalid_target(PATH, 12, 5, "expected ','")
    (good,) = events_for_valid_target(PATH)
    assert bad.detail == f"{PATH}:12:5: expected ','"
    assert "does not parse" in format_message([bad])[0]
    assert good.type is EventType.TARGET_VALID and good.severity is Severity.INFO


def test_withheld_and_suspicious_are_warnings_with_reasons() -> None:
    p = ProviderReport(
        "ollama",
        Status.OK,
        withheld=("llama3:8b",),
        suspicious=(Skipped("{env:HOME}", "contains {env:"),),
    )
    events = events_from_report(_report(p))
    assert [e.type for e in events] == [EventType.WITHHELD, EventType.SUSPICIOUS]
    assert all(e.severity is Severity.WARNING for e in events)
    _, body = format_message(events)
    assert "llama3:8b" in body and "{env:HOME}" in body and "contains {env:" in body
    assert RESTART_HINT not in body


def test_untrusted_ids_are_shown_escaped_and_capped() -> None:
    hostile = "evil\n\x1b[31mred\u202etxt.exe"
    p = ProviderReport("x", Status.OK, suspicious=(Skipped(hostile, "control character"),))
    (event,) = events_from_report(_report(p))
    (shown,) = event.models
    assert "\n" not in shown and "\x1b" not in shown and "\u202e" not in shown
    assert shown == "evil\\n\\x1b[31mred\\u202etxt.exe"
    long_id = "a" * (ID_MAX * 2)
    assert len(display_text(long_id)) == ID_MAX and display_text(long_id).endswith("…")
    safe = "qwen3-coder:30b-a3b-q4_K_M"
    assert display_text(safe) == safe


def test_batches_are_one_per_target_in_first_seen_order() -> None:
    a = Event(EventType.ADDED, "/a/opencode.json", "p", ("m1",))
    b = Event(EventType.REMOVED, "/b/opencode.json", "p", ("m2",))
    c = Event(EventType.UPDATED, "/a/opencode.json", "q", ("m3",))
    batches = batch_events([a, b, c])
    assert [x.target for x in batches] == [a.target, b.target]
    assert batches[0].events == (a, c)
    assert (batches[0].title, batches[0].body) == format_message([a, c])
    wire = json.loads(json.dumps(batches[0].to_json()))
    assert [e["models"] for e in wire["events"]] == [["m1"], ["m3"]]
    assert wire["severity"] == "info"


def test_batch_severity_is_the_worst_event() -> None:
    events = [
        Event(EventType.ADDED, PATH, "a", ("m",)),
        Event(EventType.UNREACHABLE, PATH, "b", detail="refused", error_label="unreachable"),
    ]
    (batch,) = batch_events(events)
    assert batch.severity is Severity.ERROR
    assert "unreachable" in batch.title


# --- rate limiting over simulated time -------------------------------------------------------


def _unreachable(pid: str = "ollama", label: str = "unreachable") -> Event:
    return Event(EventType.UNREACHABLE, PATH, pid, detail="refused", error_label=label)


def _recovered(pid: str = "ollama") -> Event:
    return Event(EventType.RECOVERED, PATH, pid)


def test_changes_are_never_rate_limited() -> None:
    limiter = RateLimiter()
    added = Event(EventType.ADDED, PATH, "ollama", ("m",))
    assert all(limiter.allow(added, now=float(t)) for t in range(5))


def test_same_error_passes_once_per_window_per_provider() -> None:
    limiter = RateLimiter()
    assert limiter.allow(_unreachable(), 0.0)
    assert not limiter.allow(_unreachable(), RATE_WINDOW - 1)
    assert limiter.allow(_unreachable("other"), 1.0)  # another provider is another budget
    assert limiter.allow(_unreachable(label="auth"), 2.0)  # another error too
    assert limiter.allow(_unreachable(), RATE_WINDOW + 1)


def test_recovered_passes_only_after_a_sent_unreachable() -> None:
    limiter = RateLimiter()
    assert not limiter.allow(_recovered(), 0.0)
    assert limiter.allow(_unreachable(), 10.0)
    assert limiter.allow(_recovered(), 20.0)
    assert not limiter.allow(_recovered(), 30.0)


def _replay(limiter: RateLimiter, timeline: list[tuple[float, Event]]) -> list[EventType]:
    sent = []
    for now, event in timeline:
        if limiter.allow(event, now):
            sent.append(event.type)
        sent += [e.type for e in limiter.due(now)]
    return sent


def test_flapping_provider_is_held_and_dropped_when_it_heals() -> None:
    # down, up, then down/up again every 5 minutes, all inside the window after the recovery
    step = 300.0
    flaps = int(RATE_WINDOW // step) - 1
    timeline = [(0.0, _unreachable()), (60.0, _recovered())]
    timeline += [
        (60.0 + step * i, _unreachable() if i % 2 else _recovered()) for i in range(1, flaps)
    ]
    assert _replay(RateLimiter(), timeline) == [EventType.UNREACHABLE, EventType.RECOVERED]


def test_hours_of_flapping_send_one_pair_then_the_final_state() -> None:
    step, hours = 300.0, 6
    n = int(hours * 3600 / step)
    timeline = [(step * i, _recovered() if i % 2 else _unreachable()) for i in range(n + 1)]
    limiter = RateLimiter()
    assert _replay(limiter, timeline) == [EventType.UNREACHABLE, EventType.RECOVERED]
    assert timeline[-1][1].type is EventType.UNREACHABLE  # it settled down: the user must hear
    last_up = timeline[-2][0]  # the held failure waits one window after the last recovery
    assert limiter.due(last_up + RATE_WINDOW - 1) == []
    assert [e.type for e in limiter.due(last_up + RATE_WINDOW)] == [EventType.UNREACHABLE]


def test_held_failure_is_released_when_it_stays_down() -> None:
    limiter = RateLimiter()
    assert limiter.allow(_unreachable(), 0.0)
    assert limiter.allow(_recovered(), 100.0)
    assert not limiter.allow(_unreachable(), 200.0)  # held: may be a flap
    assert limiter.due(100.0 + RATE_WINDOW - 1) == []
    released = limiter.due(100.0 + RATE_WINDOW)
    assert released == [_unreachable()]
    assert limiter.due(100.0 + RATE_WINDOW + 1) == []  # only once
    assert limiter.allow(_recovered(), 100.0 + RATE_WINDOW + 50)  # and the recovery pairs with it


def test_standing_warnings_repeat_only_after_the_reminder_window() -> None:
    limiter = RateLimiter()
    withheld = Event(EventType.WITHHELD, PATH, "ollama", ("llama3:8b",))
    assert limiter.allow(withheld, 0.0)
    assert not limiter.allow(withheld, RATE_WINDOW * 2)
    assert limiter.allow(Event(EventType.WITHHELD, PATH, "ollama", ("other",)), 1.0)
    assert limiter.allow(withheld, REMINDER_WINDOW + 1)


def test_target_valid_pairs_with_a_sent_invalid() -> None:
    limiter = RateLimiter()
    (bad,) = events_for_invalid_target(PATH, 1, 2, "oops")
    (good,) = events_for_valid_target(PATH)
    assert not limiter.allow(good, 0.0)
    assert limiter.allow(bad, 1.0)
    assert not limiter.allow(bad, 2.0)  # the same error again: already told
    assert limiter.allow(good, 3.0)
