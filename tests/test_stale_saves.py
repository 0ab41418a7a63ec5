"""Saves from a stale editor buffer are not deletions: only an entry the user could see is tombstoned."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from fakes import FakeProvider

from syncd import jsonc
from syncd.engine import Engine
from syncd.settings import load_settings
from syncd.sync.state import load_state

PID = "lab"
UNDID = "a save undid syncd's last write"


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[FakeProvider]:
    settings = tmp_path / "settings.json5"
    settings.write_text("{ detect: false, catalog: 'off', grace: 1 }\n")
    os.environ["SYNCD_CONFIG"] = str(settings)  # the autouse fixture restores the environment
    fake = FakeProvider("openai", [{"id": "a"}], variant="vllm")
    yield fake
    fake.close()


@pytest.fixture
def target(tmp_path: Path, provider: FakeProvider) -> Path:
    path = tmp_path / "opencode.jsonc"
    path.write_text(
        '{\n  // my config\n  "provider": {\n    "lab": {\n'
        '      "npm": "@ai-sdk/openai-compatible",\n'
        f'      "options": {{ "baseURL": "{provider.base_url}" }},\n'
        '      "models": { "mine": { "name": "Mine" } }\n    }\n  }\n}\n')
    return path


def serve(provider: FakeProvider, *ids: str) -> None:
    provider.models = [{"id": i} for i in ids]


def ids(target: Path) -> set[str]:
    return set(jsonc.parse(target.read_text())["provider"][PID]["models"])


def with_theme(text: str, theme: str) -> str:
    """The user's own change in their editor."""
    return jsonc.modify(text, ["theme"], theme)


def delete(target: Path, mid: str) -> None:
    """The user deletes a model entry in an editor that has the file as it is now."""
    text = target.read_text()
    target.write_text(jsonc.modify(text, ["provider", PID, "models", mid], jsonc.REMOVE))


def tombstones(target: Path) -> frozenset[str]:
    return load_state().provider(target, PID).tombstones


async def sync(target: Path) -> list[dict[str, Any]]:
    engine = Engine(load_settings(), cli_configs=[str(target)])
    try:
        with structlog.testing.capture_logs() as logs:
            report = await engine.sync(target)
        assert report.error is None, report.error
        return logs
    finally:
        await engine.aclose()


async def revalidate(target: Path) -> tuple[Any, list[dict[str, Any]]]:
    engine = Engine(load_settings(), cli_configs=[str(target)])
    try:
        with structlog.testing.capture_logs() as logs:
            report = await engine.revalidate(target)
        return report, logs
    finally:
        await engine.aclose()


async def synced_then_added(target: Path, provider: FakeProvider, *served: str) -> str:
    """Sync `a`, then let syncd's next write add `served`; returns the text before that write."""
    await sync(target)
    before = target.read_text()
    serve(provider, *served)
    await sync(target)
    return before


def undid(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"].startswith(UNDID)]


async def test_models_a_stale_buffer_drops_come_back_and_are_not_tombstoned(
    target: Path, provider: FakeProvider
) -> None:
    # the editor reads the file (it has `a`), then syncd adds b and c behind its back
    buffer = await synced_then_added(target, provider, "a", "b", "c")
    assert ids(target) == {"mine", "a", "b", "c"}
    target.write_text(with_theme(buffer, "dark"))  # ...which saves its buffer: b and c vanish

    logs = await sync(target)
    assert ids(target) == {"mine", "a", "b", "c"}
    assert tombstones(target) == frozenset()
    assert jsonc.parse(target.read_text())["theme"] == "dark"  # the user's edit stays
    (line,) = undid(logs)
    assert line["models"] == ["lab/b", "lab/c"] and line["target"] == str(target)
    assert set(load_state().provider(target, PID).managed) == {"a", "b", "c"}


async def test_a_revalidation_of_a_stale_save_tombstones_nothing_and_asks_for_the_models_back(
    target: Path, provider: FakeProvider
) -> None:
    buffer = await synced_then_added(target, provider, "a", "b")
    target.write_text(with_theme(buffer, "dark"))

    report, logs = await revalidate(target)  # what the daemon does on the save
    (p,) = report.providers
    assert p.tombstoned == () and p.restored == ("b",)
    assert tombstones(target) == frozenset() and len(undid(logs)) == 1
    assert await sync(target) == []  # judged once: the sync that adds b back says nothing more
    assert ids(target) == {"mine", "a", "b"} and tombstones(target) == frozenset()


async def test_a_deletion_of_some_of_what_syncd_added_is_a_deletion(
    target: Path, provider: FakeProvider
) -> None:
    await synced_then_added(target, provider, "a", "b", "c")
    delete(target, "b")
    logs = await sync(target)
    assert ids(target) == {"mine", "a", "c"}
    assert tombstones(target) == {"b"} and undid(logs) == []


async def test_deleting_the_one_model_syncd_just_added_twice_makes_it_stay_deleted(
    target: Path, provider: FakeProvider
) -> None:
    await synced_then_added(target, provider, "a", "b")

    delete(target, "b")  # looks exactly like a stale buffer: the text is syncd's pre-write text
    assert len(undid(await sync(target))) == 1 and ids(target) == {"mine", "a", "b"}
    delete(target, "b")  # the user insists: a write that only brought b back is not judged again
    assert undid(await sync(target)) == []
    assert ids(target) == {"mine", "a"} and tombstones(target) == {"b"}


async def test_a_stale_save_of_a_removed_model_does_not_make_it_the_users(
    target: Path, provider: FakeProvider
) -> None:
    serve(provider, "a", "z")
    await sync(target)
    buffer = target.read_text()  # has z
    serve(provider, "a")
    await sync(target)  # grace 1: z is removed
    assert ids(target) == {"mine", "a"}
    target.write_text(with_theme(buffer, "dark"))  # the stale buffer brings z back
    await sync(target)
    assert ids(target) == {"mine", "a"}  # z is still syncd's, and still gone upstream
    assert tombstones(target) == frozenset()


async def test_a_later_edit_on_top_of_syncds_write_is_judged_normally(
    target: Path, provider: FakeProvider
) -> None:
    await synced_then_added(target, provider, "a", "b")
    # the user saw b (their buffer has it), then deleted a: a deletion, whatever came before
    target.write_text(with_theme(target.read_text(), "x"))
    delete(target, "a")
    assert undid(await sync(target)) == []
    assert tombstones(target) == {"a"} and ids(target) == {"mine", "b"}




async def test_a_stale_save_of_an_updated_entry_does_not_make_its_fields_the_users(
    target: Path, provider: FakeProvider
) -> None:
    def context() -> Any:
        return jsonc.parse(target.read_text())["provider"][PID]["models"]["a"]["limit"]["context"]

    provider.models = [{"id": "a", "context": 8192}]
    await sync(target)
    buffer = target.read_text()
    provider.models = [{"id": "a", "context": 32768}]
    await sync(target)
    assert context() == 32768
    target.write_text(with_theme(buffer, "dark"))  # back to 8192, which the user never chose
    await sync(target)
    assert context() == 32768
    provider.models = [{"id": "a", "context": 65536}]
    await sync(target)
    assert context() == 65536  # still syncd's field


async def test_the_record_of_the_last_write_survives_the_state_file_and_a_kill(
    target: Path, provider: FakeProvider
) -> None:
    from syncd.sync.state import save_state

    await synced_then_added(target, provider, "a", "b")
    state = load_state()
    (written, _) = state.target(target).recent_writes  # a (the first sync), then b
    assert set(written.providers[PID].entries) == {"b"}
    save_state(state)
    assert load_state() == state
    # a syncd killed between its replace and its record left only the pending record
    ts = state.target(target)
    killed = state.with_target(target, type(ts)(providers=ts.providers)).with_pending(
        target, ts.last_write_sha256, ts.providers, written)
    save_state(killed)
    settled = load_state().settled(target, ts.last_write_sha256 or "")
    assert settled.target(target).recent_writes[0] == written


async def test_a_write_is_judged_once_so_deleting_the_rest_later_brings_nothing_back(
    target: Path, provider: FakeProvider
) -> None:
    await synced_then_added(target, provider, "a", "b", "c")

    delete(target, "b")
    await sync(target)
    assert tombstones(target) == {"b"}
    delete(target, "c")  # all that write added is gone now: still two deletions, no stale save
    assert undid(await sync(target)) == []
    assert ids(target) == {"mine", "a"} and tombstones(target) == {"b", "c"}


async def test_insisting_works_when_the_daemon_revalidates_each_deletion_first(
    target: Path, provider: FakeProvider
) -> None:
    await synced_then_added(target, provider, "a", "b")
    delete(target, "b")
    report, _ = await revalidate(target)  # the daemon reacts to the save...
    assert report.providers[0].restored == ("b",)
    await sync(target)  # ...and syncs b back
    assert ids(target) == {"mine", "a", "b"}
    delete(target, "b")
    report, logs = await revalidate(target)
    assert report.providers[0].tombstoned == ("b",) and undid(logs) == []
    await sync(target)
    assert ids(target) == {"mine", "a"} and tombstones(target) == {"b"}


async def test_a_write_killed_before_its_record_and_edited_after_still_counts_as_landed(
    target: Path, provider: FakeProvider
) -> None:
    from syncd.sync import record

    class Killed(BaseException):
        pass

    def killed(*args: object) -> None:
        raise Killed  # the replace happened; the record after it never ran

    serve(provider, "a", "z")
    await sync(target)
    serve(provider, "a", "b")  # the next write adds b and removes z
    with pytest.MonkeyPatch.context() as mp, pytest.raises(Killed):
        mp.setattr(record, "record", killed)
        await sync(target)
    assert ids(target) == {"mine", "a", "b"}
    target.write_text(with_theme(target.read_text(), "dark"))  # the user edits on top of it
    await sync(target)
    assert tombstones(target) == frozenset()  # z was removed by syncd, not by the user
    assert set(load_state().provider(target, PID).managed) == {"a", "b"}  # b is syncd's


async def test_a_write_that_never_landed_is_not_taken_for_landed_by_an_older_save(
    target: Path, provider: FakeProvider
) -> None:
    from syncd.errors import TargetError
    from syncd.sync import record
    from syncd.sync.store import read_target

    def planned_then_raced(path: Path, transform: Any, **kw: Any) -> None:
        transform(read_target(path).text)  # plans and records its pending write...
        raise TargetError(str(path), "changed while syncing (6 tries); will retry")  # ...never lands

    await sync(target)  # a
    buffer = target.read_text()  # an editor holds a buffer with a
    serve(provider, "b")
    await sync(target)  # grace 1: b added, a removed
    serve(provider, "c")
    engine = Engine(load_settings(), cli_configs=[str(target)])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(record, "write_target", planned_then_raced)
        report = await engine.sync(target)  # would add c and remove b
    await engine.aclose()
    assert report.error is not None and "changed while syncing" in report.error
    target.write_text(with_theme(buffer, "dark"))  # the old buffer is saved: a back, b gone
    logs = await sync(target)
    assert tombstones(target) == frozenset()
    assert ids(target) == {"mine", "c"} and len(undid(logs)) == 1


async def test_a_buffer_older_than_several_writes_undoes_them_all_and_tombstones_nothing(
    target: Path, provider: FakeProvider
) -> None:
    # The editor stays open while the provider changes three times: one buffer, three writes.
    serve(provider, "a", "z")
    await sync(target)
    buffer = target.read_text()
    for served in (("a", "z", "b"), ("a", "b", "c"), ("a", "c", "d")):  # grace 1
        serve(provider, *served)
        await sync(target)
    assert ids(target) == {"mine", "a", "c", "d"}
    target.write_text(with_theme(buffer, "dark"))  # a, z: all three writes undone

    logs = await sync(target)
    assert tombstones(target) == frozenset()
    assert ids(target) == {"mine", "a", "c", "d"}  # z removed again, c and d added again
    (line,) = undid(logs)
    assert line["models"] == ["lab/b", "lab/c", "lab/d"]
    assert set(load_state().provider(target, PID).managed) == {"a", "c", "d"}
