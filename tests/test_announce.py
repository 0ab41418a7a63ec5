"""What reaches the listener: a report's events, an invalid target once per error, its recovery later."""

from __future__ import annotations

from collections.abc import Sequence

from syncd.notify.announce import Announcer
from syncd.notify.events import Event, EventType
from syncd.report import ProviderReport, Status, TargetReport

PATH = "/home/u/.config/opencode/opencode.jsonc"


def listener() -> tuple[Announcer, list[list[EventType]]]:
    batches: list[list[EventType]] = []

    def notify(events: Sequence[Event]) -> None:
        batches.append([e.type for e in events])

    return Announcer(notify), batches


def broken(error: str) -> TargetReport:
    return TargetReport(PATH, error=f"{PATH}:{error}")


async def test_an_invalid_target_is_announced_once_per_distinct_error() -> None:
    announce, batches = listener()
    for error in ("3:1: expected ','", "3:1: expected ','", "9:2: expected ':'"):
        assert await announce.invalid("k", broken(error)) == broken(error)
    assert batches == [[EventType.TARGET_INVALID], [EventType.TARGET_INVALID]]


async def test_valid_again_goes_out_with_the_next_batch_and_only_after_invalid() -> None:
    announce, batches = listener()
    announce.valid_again("k", PATH)  # never invalid: nothing to say
    await announce.invalid("k", broken("1:1: oops"))
    announce.valid_again("k", PATH)
    assert len(batches) == 1  # held until something else is said
    added = TargetReport(PATH, changed=True, providers=(ProviderReport("lm", Status.OK, added=("m",)),))
    await announce.synced(added, {})
    assert batches[1] == [EventType.TARGET_VALID, EventType.ADDED]
    await announce.invalid("k", broken("1:1: oops"))  # the same error again after recovering
    assert batches[2] == [EventType.TARGET_INVALID]


async def test_a_provider_back_after_failures_is_news_and_a_quiet_cycle_is_not() -> None:
    announce, batches = listener()
    quiet = TargetReport(PATH, providers=(ProviderReport("lm", Status.OK),))
    await announce.synced(quiet, {"lm": 0})
    await announce.synced(quiet, {"lm": 3})
    assert batches == [[EventType.RECOVERED]]

