"""The state file: round-trip, crash-safe atomic writes, refusal of corrupt or newer files."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from syncd import paths
from syncd.errors import StateError
from syncd.sync import records, state
from syncd.sync.records import VERSION, ProviderState, State, target_key
from syncd.sync.state import load_state, quarantine, save_state

NOW = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)


def sample(n: int = 3) -> State:
    ps = ProviderState(
        managed={f"m{i}": {"name": f"M {i}", "limit": {"context": 8192, "output": 2048}}
                 for i in range(n)},
        tombstones=frozenset({"gone"}), misses={"m0": 1}, kind="ollama",
        served=n, served_ids=tuple(f"m{i}" for i in range(n)), whitelist=("m0",),
    ).succeeded(NOW)
    return State().with_provider("/tmp/x/opencode.json", "ollama", ps).with_write(
        "/tmp/x/opencode.json", "ab" * 32, NOW)


def test_missing_file_is_an_empty_state() -> None:
    assert load_state() == State()


def test_save_then_load_round_trips(isolated_home: Path) -> None:
    save_state(sample())
    assert load_state() == sample()
    assert (paths.state_dir() / "state.json").is_file()


def test_the_file_holds_exactly_the_json_shape_and_reads_back_from_disk(isolated_home: Path) -> None:
    with_pending = sample().with_pending("/tmp/x/opencode.json", "cd" * 32,
                                         {"ollama": ProviderState(kind="ollama")}, None)
    for st in (State(), sample(), with_pending):
        save_state(st)
        on_disk = (paths.state_dir() / "state.json").read_bytes()
        assert json.loads(on_disk) == json.loads(json.dumps(records.to_json(st)))
        state._read.clear()  # parsed from the bytes, not the copy kept at the save
        assert load_state() == st


def test_a_providers_part_is_encoded_once_per_value(monkeypatch: pytest.MonkeyPatch) -> None:
    encoded: list[int] = []
    real = records._provider_to_json

    def counting(ps: ProviderState) -> Any:
        encoded.append(len(ps.managed))
        return real(ps)

    monkeypatch.setattr(records, "_provider_to_json", counting)
    big = sample(3000)
    save_state(big)
    assert encoded == [3000]
    small = ProviderState(managed={"x": {"name": "X"}}, kind="ollama")
    save_state(big.with_provider("/tmp/x/opencode.json", "tiny", small))  # a neighbour's change
    assert encoded == [3000, 1]
    assert set(load_state().target("/tmp/x/opencode.json").providers) == {"ollama", "tiny"}


def test_state_file_is_0600_and_its_dir_0700() -> None:
    save_state(sample())
    f = paths.state_dir() / "state.json"
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert stat.S_IMODE(f.parent.stat().st_mode) == 0o700


def test_accessors_return_defaults_for_unknown_targets_and_providers() -> None:
    s = sample()
    assert s.provider("/nowhere", "p") == ProviderState()
    assert s.provider("/tmp/x/opencode.json", "ollama").kind == "ollama"
    assert s.without_provider("/tmp/x/opencode.json", "ollama").provider(
        "/tmp/x/opencode.json", "ollama") == ProviderState()


def test_targets_are_keyed_by_real_path(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_text("{}")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    s = State().with_provider(link, "p", ProviderState(served=4))
    assert list(s.targets) == [str(real.resolve())]
    assert s.provider(real, "p").served == 4 == s.provider(target_key(link), "p").served


def test_failure_and_success_bookkeeping() -> None:
    ps = ProviderState().failed("timeout after 3s", "timeout").failed("again", "timeout")
    assert ps.failures == 2 and ps.last_error == "again"
    ok = ps.succeeded(NOW)
    assert ok.failures == 0 and ok.last_error is None and ok.last_success == NOW.isoformat()


def test_corrupt_file_is_refused_with_where_and_what_to_do_and_left_untouched() -> None:
    f = paths.state_dir() / "state.json"
    f.parent.mkdir(parents=True)
    f.write_text('{"version": 1, "targets": {')
    with pytest.raises(StateError) as err:
        load_state()
    msg = str(err.value)
    assert str(f) in msg and "move it aside" in msg and "\n" not in msg
    assert f.read_text() == '{"version": 1, "targets": {'


@pytest.mark.parametrize("doc", [
    [1, 2],
    {"targets": {}},
    {"version": 1, "targets": {"/x": {"providers": {"p": {"managed": []}}}}},
    {"version": 1, "targets": {"/x": {"providers": {"p": {"failures": "3"}}}}},
])
def test_wrong_shape_is_corrupt(doc: Any) -> None:
    f = paths.state_dir() / "state.json"
    f.parent.mkdir(parents=True)
    f.write_text(json.dumps(doc))
    with pytest.raises(StateError, match="move it aside"):
        load_state()


def test_newer_version_is_refused_not_overwritten() -> None:
    f = paths.state_dir() / "state.json"
    f.parent.mkdir(parents=True)
    f.write_text(json.dumps({"version": VERSION + 1, "targets": {}}))
    with pytest.raises(StateError, match="newer syncd"):
        load_state()


def test_migrations_run_from_older_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    # pretend this syncd is at version 2, with a migration that renames a field
    def one_to_two(doc: dict[str, Any]) -> dict[str, Any]:
        doc["targets"] = doc.pop("files")
        return doc
    monkeypatch.setattr(state, "VERSION", 2)
    monkeypatch.setitem(state.MIGRATIONS, 1, one_to_two)
    f = paths.state_dir() / "state.json"
    f.parent.mkdir(parents=True)
    f.write_text(json.dumps({"version": 1, "files": {"/t": {"providers": {"p": {"served": 7}}}}}))
    assert load_state().provider("/t", "p").served == 7


def test_quarantine_moves_the_file_aside_with_a_free_number() -> None:
    f = paths.state_dir() / "state.json"
    f.parent.mkdir(parents=True)
    for _ in range(2):
        f.write_text("garbage")
        moved = quarantine()
        assert moved.read_text() == "garbage" and not f.exists()
    assert sorted(p.name for p in f.parent.iterdir()) == [
        "state.json.corrupt-1", "state.json.corrupt-2"]
    assert load_state() == State()


def test_failure_between_write_and_replace_keeps_the_old_file(
        monkeypatch: pytest.MonkeyPatch) -> None:
    save_state(sample(1))
    f = paths.state_dir() / "state.json"
    before = f.read_bytes()

    def boom(*_: object) -> None:
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(StateError, match="No space left"):
        save_state(sample(50))
    assert f.read_bytes() == before
    assert [p.name for p in f.parent.iterdir()] == ["state.json"]  # no temp file left behind


WRITER = """
import sys
from pathlib import Path
from syncd.sync.records import ProviderState, State
from syncd.sync.state import save_state
path = Path(sys.argv[1])
i = 0
print("ready", flush=True)
while True:
    i += 1
    managed = {f"m{j}": {"name": "x" * 200, "n": i} for j in range(2000)}
    ps = ProviderState(managed=managed, served=i)
    save_state(State().with_provider("/t", "p", ps), path)
"""


def test_writer_killed_mid_write_leaves_a_whole_old_or_new_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    save_state(State().with_provider("/t", "p", ProviderState(served=0)), path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for delay in (0.05, 0.13, 0.31, 0.47):
        child = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], env=env,
                                 stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        time.sleep(delay)  # not an assertion on time: just somewhere in the middle of a write
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        loaded = load_state(path)  # whole and parseable, never a StateError
        served = loaded.provider("/t", "p").served
        assert served >= 0
        if served:
            assert len(loaded.provider("/t", "p").managed) == 2000


def _pending_state(tmp_path: Path) -> tuple[State, Path, ProviderState]:
    target = tmp_path / "opencode.json"
    landed = ProviderState(managed={"new-model": {"name": "New"}})
    before = State().with_provider(target, "ollama", ProviderState(managed={"old": {}}))
    return before.with_pending(target, "sha-of-new-text", {"ollama": landed}), target, landed


def test_pending_record_applies_when_the_write_landed(tmp_path: Path) -> None:
    pending, target, landed = _pending_state(tmp_path)
    settled = pending.settled(target, "sha-of-new-text")
    assert settled.provider(target, "ollama") == landed
    assert settled.target(target).pending_sha256 is None


def test_pending_record_is_dropped_when_the_write_never_landed(tmp_path: Path) -> None:
    pending, target, _ = _pending_state(tmp_path)
    settled = pending.settled(target, "sha-of-the-old-text")
    assert set(settled.provider(target, "ollama").managed) == {"old"}
    assert settled.target(target).pending_sha256 is None


def test_pending_record_survives_a_save_and_load(tmp_path: Path) -> None:
    pending, target, landed = _pending_state(tmp_path)
    save_state(pending, tmp_path / "state.json")
    loaded = load_state(tmp_path / "state.json")
    assert loaded.settled(target, "sha-of-new-text").provider(target, "ollama") == landed
