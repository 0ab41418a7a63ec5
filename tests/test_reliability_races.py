"""Races: a second writer (an editor, OpenCode adding `$schema`) saves by rename mid-sync; no edit lost."""

from __future__ import annotations

import os
import random
import re
import signal
import time
from pathlib import Path

import pytest
from reliability_kit import (
    USER_MODEL,
    RotatingFake,
    ask,
    ids_of,
    once_cmd,
    spawn_loop,
    stop_loop,
    syncd_cli,
    target_text,
    write_settings,
)

from syncd import jsonc
from syncd.sync.state import load_state

EDITS = int(os.environ.get("SYNCD_RELIABILITY_EDITS", "300"))
PID = "rot"
COUNTER = re.compile(r"// edited (\d+) times")
SCHEMA = '"$schema": "https://opencode.ai/config.json",'


def save_by_rename(path: Path, text: str) -> None:
    """What editors and OpenCode do: write a sibling file, then rename it over the target."""
    tmp = path.with_name(f".{path.name}.swp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class Editor:
    """Makes one realistic edit at a time and remembers what each must leave in the file."""

    def __init__(self) -> None:
        self.user_models: list[str] = []
        self.counter = 0
        self.schema = False
        self.theme: str | None = None

    def edit(self, text: str, i: int) -> str:
        kind = i % 4
        if kind == 0:  # a model added by hand, with the editor's own spacing
            mid = f"hand-{i}"
            self.user_models.append(mid)
            return jsonc.modify(text, ["provider", PID, "models", mid], {"name": f"Hand {i}"})
        if kind == 1:  # a comment changed
            self.counter += 1
            if COUNTER.search(text) is None:
                return text.replace("{", "{\n  // edited 1 times", 1)
            return COUNTER.sub(f"// edited {self.counter} times", text, count=1)
        if kind == 2 and not self.schema:  # OpenCode's own insertion after the first `{`
            self.schema = True
            return text.replace("{", "{\n  " + SCHEMA, 1)
        self.theme = f"theme-{i}"
        return jsonc.modify(text, ["theme"], self.theme)

    def assert_kept_settled(self, target: Path) -> None:
        """`assert_kept` on the file once any swap in flight has settled.

        syncd installs its write by exchanging it with the file and then checks what came out:
        when that was a save newer than what it planned from, it exchanges them back at once.
        A read between the two exchanges (microseconds apart, longer on a loaded machine) sees
        syncd's version for that moment; the save is back right after. A lost edit stays lost:
        a read 100 ms later still misses it, and that fails.
        """
        for _ in range(5):
            try:
                self.assert_kept(target.read_text(encoding="utf-8"))
                return
            except AssertionError:
                time.sleep(0.02)
        self.assert_kept(target.read_text(encoding="utf-8"))

    def assert_kept(self, text: str) -> None:
        doc = jsonc.parse(text)
        models = ids_of(doc, PID)
        lost = [m for m in self.user_models if m not in models]
        assert not lost, f"user models lost: {lost}"
        assert USER_MODEL in models
        if self.counter:
            found = COUNTER.search(text)
            assert found is not None and int(found[1]) == self.counter, "a comment edit was lost"
        if self.schema:
            assert text.count('"$schema"') == 1
        assert doc.get("theme") == self.theme


@pytest.mark.slow
def test_editor_saves_during_syncs_lose_no_user_edit(tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("SYNCD_RELIABILITY_SEED", "8")))
    fake = RotatingFake()
    try:
        env = {"SYNCD_CONFIG": str(write_settings(tmp_path, "grace: 1"))}
        os.environ.update(env)
        target = tmp_path / "opencode.jsonc"
        target.write_text(target_text({PID: fake.base_url}))
        editor = Editor()
        loop = spawn_loop(target, env)
        child = int(ask(loop, "go"))
        try:
            for i in range(EDITS):
                time.sleep(rng.uniform(0.0, 0.03))
                text = target.read_text(encoding="utf-8")
                jsonc.parse(text)  # every file anyone sees parses
                save_by_rename(target, editor.edit(text, i))
                time.sleep(rng.uniform(0.0, 0.01))
                editor.assert_kept_settled(target)
        finally:
            os.kill(child, signal.SIGTERM)
            ask(loop, "reap")
            stop_loop(loop)
        listings = fake.tick
        out = syncd_cli(*once_cmd(target))
        assert out.returncode == 0, out.stderr
        final = target.read_text(encoding="utf-8")
        editor.assert_kept(final)
        synced = ids_of(jsonc.parse(final), PID) - {USER_MODEL, *editor.user_models}
        # An editor saving a buffer read just before syncd's write undoes that write. The user
        # never saw what it dropped: no tombstone, and syncd plans as if the write never
        # happened, so what the buffer brings back stays syncd's to remove (DESIGN §4.3).
        ps = load_state().provider(target, PID)
        served = set(fake.window_ids(fake.tick - 1))
        assert ps.tombstones == frozenset(), sorted(ps.tombstones)
        assert synced == served, (sorted(synced - served), sorted(served - synced))
        assert set(ps.managed) == served
        assert listings > EDITS // 10, "the syncs hardly ran: no interleaving was tested"
        print(f"{EDITS} edits against {listings} sync listings; tombstones {len(ps.tombstones)}")
    finally:
        fake.close()
