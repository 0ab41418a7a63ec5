"""Cross-process locks: a second writer waits or times out, one daemon per state, death frees."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.errors import TargetError
from syncd.sync.locks import (
    LockTimeout,
    acquire_daemon_lock,
    daemon_lock_holder,
    lock_file_for,
    target_lock,
)
from syncd.sync.store import write_target

# A child that takes a lock, says "locked", and holds it until a line arrives on stdin.
HOLD_TARGET = """
import sys
from pathlib import Path
from syncd.sync.locks import target_lock
with target_lock(Path(sys.argv[1]), Path(sys.argv[2]), timeout=5):
    print("locked", flush=True)
    sys.stdin.readline()
"""
HOLD_DAEMON = """
import sys
from pathlib import Path
from syncd.sync.locks import acquire_daemon_lock
lock = acquire_daemon_lock(Path(sys.argv[1]))
print("locked" if lock else "refused", flush=True)
sys.stdin.readline()
"""


class Holder:
    def __init__(self, script: str, *args: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", script, *map(str, args)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout is not None
        self.said = self.proc.stdout.readline().strip()

    def release(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.kill()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture
def holders() -> Iterator[list[Holder]]:
    started: list[Holder] = []
    yield started
    for holder in started:
        holder.close()


@pytest.fixture
def target(tmp_path: Path) -> Path:
    path = tmp_path / "opencode.json"
    path.write_text("{}\n", encoding="utf-8")
    return path


def test_second_writer_times_out_with_a_one_line_message(
    target: Path, tmp_path: Path, holders: list[Holder]
) -> None:
    state = tmp_path / "state"
    holders.append(holder := Holder(HOLD_TARGET, target, state))
    assert holder.said == "locked"
    with pytest.raises(LockTimeout) as err, target_lock(target, state, timeout=0.1):
        pass
    assert str(err.value) == f"another syncd is writing {target}; try again"
    assert isinstance(err.value, TargetError)


def test_second_writer_waits_for_the_first_to_finish(
    target: Path, tmp_path: Path, holders: list[Holder]
) -> None:
    state = tmp_path / "state"
    holders.append(holder := Holder(HOLD_TARGET, target, state))
    assert holder.said == "locked"
    got_it = threading.Event()

    def wait_for_lock() -> None:
        with target_lock(target, state, timeout=30):
            got_it.set()

    waiter = threading.Thread(target=wait_for_lock)
    waiter.start()
    assert not got_it.wait(0.2)  # still held: the waiter is waiting, not failing
    holder.release()
    waiter.join(30)
    assert got_it.is_set()


def test_target_lock_is_freed_when_its_holder_is_killed(
    target: Path, tmp_path: Path, holders: list[Holder]
) -> None:
    state = tmp_path / "state"
    holders.append(holder := Holder(HOLD_TARGET, target, state))
    assert holder.said == "locked"
    holder.kill()
    with target_lock(target, state, timeout=5):
        pass


def test_write_target_refuses_while_another_process_writes(
    target: Path, tmp_path: Path, holders: list[Holder]
) -> None:
    state = tmp_path / "state"
    holders.append(holder := Holder(HOLD_TARGET, target, state))
    assert holder.said == "locked"
    with pytest.raises(LockTimeout, match="try again"):
        write_target(target, lambda t: t + "\n", state_dir=state, lock_timeout=0.1)
    assert target.read_text(encoding="utf-8") == "{}\n"


def test_a_link_and_its_real_file_share_one_lock(target: Path, tmp_path: Path) -> None:
    link = tmp_path / "link.json"
    link.symlink_to(target)
    state = tmp_path / "state"
    assert lock_file_for(link, state) == lock_file_for(target, state)
    assert lock_file_for(tmp_path / "other.json", state) != lock_file_for(target, state)
    with (
        target_lock(link, state, timeout=1),
        pytest.raises(LockTimeout),
        target_lock(target, state, timeout=0.05),
    ):
        pass


def test_second_daemon_is_refused_until_the_first_releases(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = acquire_daemon_lock(state)
    assert first is not None and first.pid == os.getpid()
    assert daemon_lock_holder(state) == os.getpid()
    assert acquire_daemon_lock(state) is None
    first.release()
    with acquire_daemon_lock(state) as again:  # type: ignore[union-attr]
        assert again is not None


def test_daemon_lock_names_the_holder_and_is_freed_when_it_dies(
    tmp_path: Path, holders: list[Holder]
) -> None:
    state = tmp_path / "state"
    holders.append(holder := Holder(HOLD_DAEMON, state))
    assert holder.said == "locked"
    assert acquire_daemon_lock(state) is None
    assert daemon_lock_holder(state) == holder.proc.pid
    holder.kill()
    mine = acquire_daemon_lock(state)
    assert mine is not None
    assert daemon_lock_holder(state) == os.getpid()
    mine.release()
