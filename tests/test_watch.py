"""The watcher: the folders it watches, saves-by-rename seen, and which changes are real."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from syncd.daemon.watch import ChangeGate, is_real_change, plan_watch, sha256_of, watch_changes


def test_plan_watches_parent_and_symlink_target_folder(tmp_path: Path) -> None:
    dotfiles = tmp_path / "dotfiles" / "opencode"
    dotfiles.mkdir(parents=True)
    real = dotfiles / "opencode.jsonc"
    real.write_text("{}")
    cfg = tmp_path / "config"
    cfg.mkdir()
    link = cfg / "opencode.jsonc"
    link.symlink_to(real)
    plan = plan_watch([link])
    assert plan.dirs == {cfg, dotfiles}
    assert plan.configured([str(real)]) == {link}
    assert plan.configured([str(link)]) == {link}
    assert plan.configured([str(cfg / "other.json")]) == set()


def test_plan_watches_nearest_existing_folder_of_a_missing_one(tmp_path: Path) -> None:
    auth = tmp_path / "share" / "opencode" / "auth.json"
    plan = plan_watch([auth])
    assert plan.dirs == {tmp_path}
    assert plan.configured([str(tmp_path / "share")]) == {auth}


def test_sha256_of_missing_file_is_none(tmp_path: Path) -> None:
    assert sha256_of(tmp_path / "nope") is None
    f = tmp_path / "f"
    f.write_bytes(b"abc")
    assert sha256_of(f) == hashlib.sha256(b"abc").hexdigest()


def test_real_change_rules() -> None:
    none: frozenset[str] = frozenset()
    assert not is_real_change("a", "a", none)  # no-op save
    assert not is_real_change("b", "a", frozenset({"b"}))  # syncd's own write
    assert not is_real_change("b", "a", frozenset({"c", "b"}))  # ...recorded as pending
    assert is_real_change("b", "a", frozenset({"c"}))
    assert is_real_change(None, "a", none)  # deleted
    assert not is_real_change(None, None, none)


def test_gate_ignores_noop_saves_and_own_writes(tmp_path: Path) -> None:
    f = tmp_path / "opencode.json"
    f.write_text('{"a": 1}')
    gate = ChangeGate()
    gate.prime(f)
    assert not gate.check(f, frozenset())  # touched, same bytes
    f.write_text('{"a": 2}')
    assert not gate.check(f, frozenset({sha256_of(f) or ""}))  # what syncd just wrote
    f.write_text('{"a": 3}')
    assert gate.check(f, frozenset())
    assert not gate.check(f, frozenset())  # the same edit seen twice counts once


@asynccontextmanager
async def _watching(files: list[Path]) -> AsyncIterator[asyncio.Queue[set[Path]]]:
    stop = asyncio.Event()
    ready = asyncio.Event()
    queue: asyncio.Queue[set[Path]] = asyncio.Queue()

    async def pump() -> None:
        async for changed in watch_changes(files, stop_event=stop, on_ready=ready.set):
            await queue.put(changed)

    task = asyncio.create_task(pump())
    await asyncio.wait_for(ready.wait(), timeout=5)
    try:
        yield queue
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)


async def test_watcher_sees_save_by_rename_and_ignores_unrelated_files(tmp_path: Path) -> None:
    target = tmp_path / "opencode.jsonc"
    target.write_text("{}\n")
    async with _watching([target]) as changes:
        (tmp_path / "notes.txt").write_text("unrelated")
        tmp = tmp_path / ".opencode.jsonc.swp"
        tmp.write_text('{"x": 1}\n')
        os.replace(tmp, target)  # how editors save: write aside, rename over
        got = await asyncio.wait_for(changes.get(), timeout=10)
        assert got == {target}
        (tmp_path / "notes.txt").write_text("still unrelated")
        target.write_text('{"x": 2}\n')
        got = await asyncio.wait_for(changes.get(), timeout=10)
        assert got == {target}  # the notes edit before it never came through


async def test_watcher_follows_symlinked_target_to_its_real_folder(tmp_path: Path) -> None:
    real_dir = tmp_path / "dotfiles"
    real_dir.mkdir()
    real = real_dir / "opencode.json"
    real.write_text("{}")
    link = tmp_path / "opencode.json"
    link.symlink_to(real)
    async with _watching([link]) as changes:
        real.write_text('{"edited": true}')  # an edit in the dotfiles repo
        assert await asyncio.wait_for(changes.get(), timeout=10) == {link}


async def test_watcher_picks_up_a_folder_created_later(tmp_path: Path) -> None:
    auth = tmp_path / "share" / "opencode" / "auth.json"
    async with _watching([auth]) as changes:
        auth.parent.mkdir(parents=True)
        got: set[Path] = set()
        # the folder's creation is one event; the plan is rebuilt to watch inside it
        while True:
            got = await asyncio.wait_for(changes.get(), timeout=10)
            assert got == {auth}
            if auth.exists():
                break
            auth.write_text("{}")


async def test_watcher_stops_when_asked(tmp_path: Path) -> None:
    stop = asyncio.Event()
    gen = watch_changes([tmp_path / "a.json"], stop_event=stop)
    task = asyncio.create_task(anext(gen, None))
    await asyncio.sleep(0.05)
    stop.set()
    assert await asyncio.wait_for(task, timeout=10) is None


async def test_watcher_polls_when_forced(tmp_path: Path) -> None:
    target = tmp_path / "opencode.json"
    target.write_text("{}")
    stop = asyncio.Event()
    gen = watch_changes([target], stop_event=stop, force_polling=True)
    task = asyncio.create_task(anext(gen))
    n = 0
    while not task.done() and n < 30:  # polling snapshots on its own thread: edit until seen
        n += 1
        target.write_text(f'{{"a": {n}}}')
        await asyncio.wait([task], timeout=0.3)
    assert task.result() == {target}
    stop.set()
    await gen.aclose()
