"""`syncd undo [FILE]` puts back the latest backup of a config through the normal write path, backs
up what it replaces, and `--list` shows the backups (issue 13, item 7). Run as the user runs it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from cli_kit import block, one_json, run, write_json
from fakes import FakeProvider

from syncd import jsonc, paths
from syncd.sync.backups import backups_of

Factory = Callable[..., FakeProvider]


def synced_config(fake_provider: Factory, tmp_path: Path) -> tuple[FakeProvider, Path, str]:
    """A hand-written config with one provider, synced once: (fake, path, the text before)."""
    fake = fake_provider("ollama")
    tmp_path.mkdir(parents=True, exist_ok=True)
    cfg = tmp_path / "opencode.jsonc"
    cfg.write_text('{\n  // mine\n  "provider": {\n    "box": ' + json.dumps(block(fake.base_url))
                   + "\n  }\n}\n")
    before = cfg.read_text()
    out = run("once", "--no-notify", "--config", str(cfg))
    assert out.returncode == 0, out.stderr
    assert cfg.read_text() != before
    return fake, cfg, before


def models(cfg: Path) -> set[str]:
    return set(jsonc.parse(cfg.read_text())["provider"]["box"]["models"])


def test_undo_restores_the_text_before_syncd_s_last_write_and_backs_up_what_it_replaced(
    fake_provider: Factory, tmp_path: Path
) -> None:
    _, cfg, before = synced_config(fake_provider, tmp_path)
    after = cfg.read_text()
    out = run("undo", str(cfg))
    assert out.returncode == 0, out.stderr
    assert cfg.read_text() == before
    assert "restored" in out.stdout and "syncd restore box/MODEL" in out.stdout
    # the undo itself was backed up: undoing again puts syncd's write back
    assert backups_of(cfg, paths.state_dir())[0].path.read_text() == after
    assert run("undo", str(cfg)).returncode == 0
    assert cfg.read_text() == after


def test_what_an_undo_took_away_is_not_added_back_by_the_next_sync(
    fake_provider: Factory, tmp_path: Path
) -> None:
    _, cfg, before = synced_config(fake_provider, tmp_path)
    assert run("undo", str(cfg)).returncode == 0
    out = run("once", "--no-notify", "--config", str(cfg))
    assert out.returncode == 0, out.stderr
    assert cfg.read_text() == before
    status = one_json(run("status", "--json"))["providers"]
    assert {m for r in status for m in r["tombstones"]} >= {"qwen3-coder:30b", "gemma3:4b"}
    assert run("restore", "box/gemma3:4b").returncode == 0
    assert run("once", "--no-notify", "--config", str(cfg)).returncode == 0
    assert models(cfg) == {"gemma3:4b"}


def test_undo_without_a_file_undoes_the_config_syncd_wrote_last(
    fake_provider: Factory, tmp_path: Path
) -> None:
    _, first, _ = synced_config(fake_provider, tmp_path / "a")
    _, cfg, before = synced_config(fake_provider, tmp_path / "b")
    first_text = first.read_text()
    settings = write_json(tmp_path / "settings.json", {"configs": [str(first), str(cfg)]})
    out = run("undo", env={"SYNCD_CONFIG": str(settings)})
    assert out.returncode == 0, out.stderr
    assert cfg.read_text() == before and first.read_text() == first_text


def test_list_shows_each_backup_newest_first_and_which_one_undo_restores(
    fake_provider: Factory, tmp_path: Path
) -> None:
    fake, cfg, _ = synced_config(fake_provider, tmp_path)
    fake.models = fake.models[:1]
    for _ in range(2):  # the grace: the second run removes what is gone
        assert run("once", "--no-notify", "--config", str(cfg)).returncode == 0
    out = run("undo", "--list", str(cfg))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == str(cfg) or lines[0].endswith(cfg.name)
    rows = lines[1:]
    assert len(rows) == len(backups_of(cfg, paths.state_dir())) == 2
    assert "syncd undo" in rows[0] and all("syncd undo" not in r for r in rows[1:])
    assert rows[0][:21] >= rows[1][:21]  # newest first


def test_undo_with_nothing_to_restore_says_so_and_exits_1(tmp_path: Path) -> None:
    cfg = write_json(tmp_path / "opencode.json", {"provider": {}})
    out = run("undo", str(cfg))
    assert out.returncode == 1 and "no backups" in out.stderr and out.stdout == ""
    assert cfg.read_text() == json.dumps({"provider": {}}, indent=2) + "\n"
    listed = run("undo", "--list")
    assert listed.returncode == 0 and "no backups" in listed.stdout
