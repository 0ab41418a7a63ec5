"""The daemon's published schedule: read back while its writer lives, ignored once it is gone."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from syncd.daemon import schedule_file
from syncd.sync.records import target_key

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_schedule_of_a_living_daemon_is_read_back(tmp_path: Path) -> None:
    target = tmp_path / "opencode.json"
    schedule_file.publish(tmp_path, {(target, "ollama"): WHEN, (target, "idle"): None})
    assert schedule_file.read(tmp_path) == {target_key(target): {"ollama": WHEN.isoformat()}}
    assert (tmp_path / schedule_file.NAME).stat().st_mode & 0o777 == 0o600


def test_schedule_left_by_a_dead_daemon_is_ignored(tmp_path: Path) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    (tmp_path / schedule_file.NAME).write_text(
        f'{{"pid": {gone.stdout.strip()}, "next_runs": {{"/x": {{"p": "{WHEN.isoformat()}"}}}}}}'
    )
    assert schedule_file.read(tmp_path) == {}


def test_withdrawn_or_missing_or_corrupt_schedule_reads_empty(tmp_path: Path) -> None:
    assert schedule_file.read(tmp_path) == {}
    (tmp_path / schedule_file.NAME).write_text("{not json")
    assert schedule_file.read(tmp_path) == {}
    schedule_file.publish(tmp_path, {(tmp_path / "t.json", "p"): WHEN})
    schedule_file.withdraw(tmp_path)
    assert schedule_file.read(tmp_path) == {}
