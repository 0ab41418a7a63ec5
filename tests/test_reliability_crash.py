"""Crash safety: SIGKILL the writer at random moments of real sync cycles; the target stays old-or-new."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest
from reliability_kit import (
    COMMENT,
    USER_MODEL,
    RotatingFake,
    ask,
    comment_lines,
    ids_of,
    once_cmd,
    spawn_loop,
    stop_loop,
    strip_models,
    syncd_cli,
    target_text,
    temp_files,
    write_settings,
)

from syncd import jsonc, paths
from syncd.sync.state import load_state

KILLS = int(os.environ.get("SYNCD_RELIABILITY_KILLS", "200"))
PID = "rot"


def check_old_or_new(text: str, skeleton: str, fake: RotatingFake, previous: tuple[str, int]) -> int:
    """Assert `text` is what a complete cycle leaves; return the window's first index (-1: untouched)."""
    doc = jsonc.parse(text)  # a torn write would not parse
    base = jsonc.parse(skeleton)
    assert strip_models(doc, [PID]) == strip_models(base, [PID])
    assert comment_lines(text) == comment_lines(skeleton)
    ids = ids_of(doc, PID)
    assert USER_MODEL in ids, "the user's own model was lost"
    synced = ids - {USER_MODEL}
    if not synced:
        assert text == skeleton
        return -1
    assert fake.is_window(synced), f"half a cycle on disk: {sorted(synced)}"
    start = min(int(i.rsplit("-", 1)[1]) for i in synced)
    prev_text, prev_start = previous
    assert text == prev_text or start > prev_start, "the file went back in time"
    return start


@pytest.mark.slow
def test_sigkill_during_sync_cycles_leaves_old_or_new_and_next_once_succeeds(tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("SYNCD_RELIABILITY_SEED", "8")))
    fake = RotatingFake()
    try:
        env = {"SYNCD_CONFIG": str(write_settings(tmp_path, "grace: 1"))}
        os.environ.update(env)  # the isolated_home fixture restores the environment afterwards
        folder = tmp_path / "cfg"
        folder.mkdir()
        target = folder / "opencode.jsonc"
        skeleton = target_text({PID: fake.base_url})
        target.write_text(skeleton)
        assert COMMENT in skeleton
        previous = (skeleton, -1)
        killed_mid_write = 0
        loop = spawn_loop(target, env)
        try:
            for _ in range(KILLS):
                child = int(ask(loop, "go"))
                time.sleep(rng.uniform(0.02, 0.25))
                os.kill(child, signal.SIGKILL)
                assert ask(loop, "reap") == f"signal {int(signal.SIGKILL)}"
                text = target.read_text(encoding="utf-8")
                start = check_old_or_new(text, skeleton, fake, previous)
                previous = (text, start)
                load_state()  # the state file always loads
                killed_mid_write += bool(temp_files(folder, paths.state_dir()))
        finally:
            stop_loop(loop)
        assert previous[1] > 0, "no kill came after a completed write: the test proved nothing"

        out = syncd_cli(*once_cmd(target))
        assert out.returncode == 0, out.stderr
        text = target.read_text(encoding="utf-8")
        check_old_or_new(text, skeleton, fake, previous)
        assert temp_files(folder, paths.state_dir()) == [], os.listdir(paths.state_dir())
        managed = set(load_state().provider(target, PID).managed)
        assert managed == ids_of(jsonc.parse(text), PID) - {USER_MODEL}
        print(f"{KILLS} kills, {fake.tick} listings; {killed_mid_write} left temp files; "
              f"last window {previous[1]}")
    finally:
        fake.close()
