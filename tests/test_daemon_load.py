"""The daemon under load, deterministically: one writer per target, no self-made tombstones, cheap no-ops."""

from __future__ import annotations

import asyncio
import difflib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from fakes import FakeProvider

from syncd import jsonc
from syncd.daemon.runner import TargetRunner
from syncd.daemon.unserved import Unserved
from syncd.engine import Engine
from syncd.report import ProviderReport, Status, TargetReport
from syncd.settings import load_settings
from syncd.sync import record, revalidate
from syncd.sync.locks import LockTimeout, Stopping, target_lock
from syncd.sync.rounds import Round
from syncd.sync.state import load_state, state_file

SETTINGS = "{ detect: false, catalog: 'off', grace: 1 }\n"


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[dict[str, FakeProvider]]:
    settings = tmp_path / "settings.json5"
    settings.write_text(SETTINGS)
    os.environ["SYNCD_CONFIG"] = str(settings)  # the autouse fixture restores the environment
    fakes = {pid: FakeProvider("openai", [{"id": f"{pid}-1"}], variant="vllm") for pid in ("a", "b")}
    yield fakes
    for f in fakes.values():
        f.close()


def config(tmp_path: Path, servers: dict[str, FakeProvider]) -> Path:
    blocks = ",\n".join(
        f'    "{pid}": {{ "npm": "@ai-sdk/openai-compatible",\n'
        f'      "options": {{ "baseURL": "{fake.base_url}" }},\n'
        f'      "models": {{ "mine-{pid}": {{ "name": "Mine" }} }} }}'
        for pid, fake in servers.items())
    path = tmp_path / "opencode.jsonc"
    path.write_text('{\n  // my config\n  "provider": {\n' + blocks + "\n  }\n}\n")
    return path


def models(target: Path, pid: str) -> set[str]:
    return set(jsonc.parse(target.read_text())["provider"][pid]["models"])


def engine_for(target: Path) -> Engine:
    return Engine(load_settings(), cli_configs=[str(target)])


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every call of the write path, by target."""
    calls: list[Path] = []
    real = record.write_target

    def counting(path: Path, *args: Any, **kwargs: Any) -> Any:
        calls.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(record, "write_target", counting)
    return calls


async def test_two_providers_answers_close_together_become_one_plan_and_one_write(
    tmp_path: Path, servers: dict[str, FakeProvider], writes: list[Path]
) -> None:
    target = config(tmp_path, servers)
    engine = engine_for(target)
    applied: list[list[str]] = []

    async def apply(t: Path, answers: list[tuple[list[str], Round]]) -> bool:
        applied.append([pid for ids, _ in answers for pid in ids])
        return (await engine.apply(t, [r for _, r in answers])).changed

    async def nothing(_: Path) -> None:
        raise AssertionError("no revalidation was asked for")

    # a window far longer than any fetch: the writer starts once no fetch is in flight
    runner: TargetRunner[Round] = TargetRunner(target, engine.fetch, apply, nothing, window=30.0)
    try:
        runner.request(["a"])  # two jobs fire separately, as their timers do
        runner.request(["b"])
        await asyncio.wait_for(runner.drained(), timeout=30)
    finally:
        await engine.aclose()
    assert [sorted(ids) for ids in applied] == [["a", "b"]]  # in the order their answers came
    assert writes == [target]
    assert models(target, "a") == {"mine-a", "a-1"} and models(target, "b") == {"mine-b", "b-1"}
    assert "// my config" in target.read_text()


async def test_a_provider_asked_again_while_its_run_waits_gets_one_follow_up(
    tmp_path: Path, servers: dict[str, FakeProvider], writes: list[Path]
) -> None:
    target = config(tmp_path, servers)
    engine = engine_for(target)
    fetched: list[list[str]] = []

    async def fetch(t: Path, ids: list[str]) -> Round:
        fetched.append(ids)
        return await engine.fetch(t, ids)

    async def apply(t: Path, answers: list[tuple[list[str], Round]]) -> bool:
        return (await engine.apply(t, [r for _, r in answers])).changed

    async def nothing(_: Path) -> None:
        return None

    runner: TargetRunner[Round] = TargetRunner(target, fetch, apply, nothing, window=30.0)
    try:
        for _ in range(5):
            runner.request(["a"])
        await asyncio.wait_for(runner.drained(), timeout=30)
    finally:
        await engine.aclose()
    assert fetched == [["a"], ["a"]]
    assert writes == [target, target]  # the follow-up's plan changed nothing: its write is a no-op


async def test_a_revalidation_racing_a_provider_write_makes_no_tombstone(
    tmp_path: Path, servers: dict[str, FakeProvider], monkeypatch: pytest.MonkeyPatch
) -> None:
    target = config(tmp_path, servers)
    engine = engine_for(target)
    try:
        await engine.sync(target)  # a-1 and b-1 are syncd's now
        servers["a"].models.append({"id": "a-2"})
        target.write_text(target.read_text().replace("// my config", "// my config, edited"))

        # The revalidation of that save reads the file; a provider write that adds a-2 runs
        # right then (the daemon's write of another process's, or of a second engine).
        writer: list[threading.Thread] = []
        real_read = revalidate.read_parsed

        def read_then_write(path: Path) -> Any:
            snap = real_read(path)
            if not writer:
                other = engine_for(target)
                t = threading.Thread(target=lambda: asyncio.run(_sync_and_close(other, target)))
                writer.append(t)
                t.start()
                t.join(timeout=2.0)  # it cannot land in between: it waits for the state lock
            return snap

        monkeypatch.setattr(revalidate, "read_parsed", read_then_write)
        with structlog.testing.capture_logs() as logs:
            report = await engine.revalidate(target)
        writer[0].join(timeout=30)
    finally:
        await engine.aclose()
    assert not writer[0].is_alive()
    assert "a-2" in models(target, "a")  # the write landed, after the revalidation
    assert all(p.tombstoned == () and p.restored == () for p in report.providers)
    assert load_state().provider(target, "a").tombstones == frozenset()
    assert "a-2" in load_state().provider(target, "a").managed
    assert not [e for e in logs if "undid" in e["event"]]  # nor taken for a stale buffer's save


async def _sync_and_close(engine: Engine, target: Path) -> None:
    try:
        report = await engine.sync(target)
        assert report.error is None, report.error
    finally:
        await engine.aclose()


async def test_an_unchanged_answer_is_neither_parsed_nor_written_and_one_new_model_is_a_small_edit(
    tmp_path: Path, servers: dict[str, FakeProvider], writes: list[Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    servers["a"].models = [{"id": f"org/model-{i:04d}"} for i in range(3000)]
    target = config(tmp_path, servers)
    engine = engine_for(target)
    parses: list[int] = []
    real_parse = jsonc.parse

    def counting(text: str, *args: Any, **kwargs: Any) -> Any:
        parses.append(len(text))
        return real_parse(text, *args, **kwargs)

    try:
        for _ in range(2):  # the first adds the 3,000; the second finds nothing to do
            assert (await engine.sync(target, ["a"])).error is None
        monkeypatch.setattr(jsonc, "parse", counting)
        state_before = os.stat(state_file())
        del writes[:], parses[:]
        for _ in range(3):
            report = await engine.sync(target, ["a"])
            assert [p.status for p in report.providers if p.id == "a"] == [Status.OK]
        assert (parses, writes) == ([], [])
        after = os.stat(state_file())
        assert (after.st_mtime_ns, after.st_ino) == (state_before.st_mtime_ns, state_before.st_ino)

        old = target.read_text()
        servers["a"].models.append({"id": "org/model-new"})
        report = await engine.sync(target, ["a"])
    finally:
        await engine.aclose()
    (a,) = [p for p in report.providers if p.id == "a"]
    assert a.added == ("org/model-new",) and writes == [target]
    diff = list(difflib.unified_diff(old.splitlines(), target.read_text().splitlines(), n=0))
    changed = [line for line in diff[2:] if line[:1] in "+-"]
    assert 1 <= len(changed) <= 6, changed  # the new entry (and a comma), not the list rewritten


def test_threads_of_one_process_take_turns_at_a_lock_and_only_other_processes_time_out(
    tmp_path: Path,
) -> None:
    target = tmp_path / "opencode.json"
    order: list[str] = []
    held = threading.Event()

    def holder() -> None:
        with target_lock(target, tmp_path, timeout=0.1):
            held.set()
            order.append("first in")
            threading.Event().wait(0.5)  # longer than the second thread's timeout
            order.append("first out")

    t = threading.Thread(target=holder)
    t.start()
    held.wait(10)
    with target_lock(target, tmp_path, timeout=0.1):  # waits its turn: its own process holds it
        order.append("second in")
    t.join()
    assert order == ["first in", "first out", "second in"]

    # another process holding it is waited for only up to the timeout
    import subprocess
    import sys

    code = ("import sys, time; from pathlib import Path; from syncd.sync.locks import target_lock\n"
            "with target_lock(Path(sys.argv[1]), Path(sys.argv[2])):\n"
            "    print('held', flush=True); time.sleep(30)\n")
    other = subprocess.Popen([sys.executable, "-c", code, str(target), str(tmp_path)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout is not None and other.stdout.readline() == "held\n"
        with pytest.raises(LockTimeout), target_lock(target, tmp_path, timeout=0.2):
            pass
        stop = threading.Event()
        stop.set()
        with pytest.raises(Stopping), target_lock(target, tmp_path, timeout=60, abort=stop):
            pass
    finally:
        other.kill()
        other.wait()


def test_unserved_ids_are_said_when_they_change_not_on_every_pass(tmp_path: Path) -> None:
    target = tmp_path / "opencode.json"
    said = Unserved()

    def pass_(unserved: tuple[str, ...], warnings: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        report = TargetReport(str(target), providers=(
            ProviderReport("gw", Status.OK, unserved=unserved, warnings=warnings),))
        with structlog.testing.capture_logs() as logs:
            said.said(target, report)
        return logs

    first = pass_(("typo",), ("`typo` is not served by the provider",))
    assert [e["event"] for e in first] == ["`typo` is not served by the provider"]
    assert said.known(target) == {"gw": frozenset({"typo"})}
    for _ in range(3):
        assert pass_(("typo",)) == []  # still unserved: nothing new to say
    back = pass_(())
    assert [(e["event"], e["models"]) for e in back] == [
        ("no longer unserved (served again, or the entry is gone)", ["typo"])]
    assert said.known(target) == {}


async def test_an_unchanged_model_list_is_compared_not_read_again(
    tmp_path: Path, servers: dict[str, FakeProvider], monkeypatch: pytest.MonkeyPatch
) -> None:
    from syncd.providers.kinds import openai

    servers["a"].models = [{"id": f"org/model-{i:04d}"} for i in range(3000)]
    target = config(tmp_path, servers)
    read: list[str] = []
    real = openai.from_item

    def counting(item: Any) -> Any:
        read.append(str(item.get("id")))
        return real(item)

    monkeypatch.setattr(openai, "from_item", counting)
    engine = engine_for(target)
    try:
        first = await engine.fetch(target, ["a"])
        again = await engine.fetch(target, ["a"])
        assert len(read) == 3000 and first.fetched[0].result == again.fetched[0].result
        servers["a"].models.append({"id": "org/model-new"})
        changed = await engine.fetch(target, ["a"])
    finally:
        await engine.aclose()
    assert len(read) == 3000 + 3001  # a changed list is read whole again
    assert "org/model-new" in {m.id for m in changed.fetched[0].result.models}  # type: ignore[union-attr]


@pytest.mark.parametrize("step", ["fetch", "revalidate"])
async def test_a_config_read_in_the_middle_of_a_save_is_read_again_not_called_invalid(
    tmp_path: Path, servers: dict[str, FakeProvider], monkeypatch: pytest.MonkeyPatch, step: str,
) -> None:
    import syncd.engine

    target = config(tmp_path, servers)
    saved = target.read_text()
    engine = engine_for(target)
    try:
        await engine.sync(target)
        saved = target.read_text()
        target.write_text("")  # an editor saving in place has truncated it...
        module: Any = syncd.engine if step == "fetch" else revalidate
        name = "read_target" if step == "fetch" else "read_parsed"
        real = getattr(module, name)
        reads: list[int] = []

        def mid_save(path: Path) -> Any:
            try:
                return real(path)
            finally:
                reads.append(1)
                target.write_text(saved)  # ...and writes the rest right after syncd's read

        monkeypatch.setattr(module, name, mid_save)
        with structlog.testing.capture_logs() as logs:
            report = (await engine.fetch(target, ["a"])).report if step == "fetch" \
                else await engine.revalidate(target)
    finally:
        await engine.aclose()
    assert len(reads) == 2  # the empty file, then the saved one
    assert report is None or report.error is None
    assert not [e for e in logs if e.get("log_level") == "error"]
