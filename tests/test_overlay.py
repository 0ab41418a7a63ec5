"""Overlay writing: syncd's models in a file OpenCode merges after a target it cannot or should not edit."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeProvider

from syncd import jsonc
from syncd.engine import Engine
from syncd.settings import Settings, WriteMode, load_settings, parse_settings
from syncd.sync.layers import Layers, merged_block, removals, route, skeleton

Factory = Callable[..., FakeProvider]
SCHEMA = "https://opencode.ai/config.json"


# --- helpers -----------------------------------------------------------------------------------


def config_dir() -> Path:
    folder = Path(os.environ["XDG_CONFIG_HOME"]) / "opencode"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def user_config(base_url: str, models: Mapping[str, Any] | None = None) -> str:
    block = {"npm": "@ai-sdk/openai-compatible", "name": "Gateway", "options": {"baseURL": base_url},
             "models": dict(models if models is not None else {"hand-a": {"name": "Hand A"}})}
    return "// my own file\n" + json.dumps({"$schema": SCHEMA, "provider": {"gw": block}}, indent=2) + "\n"


def store_target(text: str) -> Path:
    """`opencode.json` as home-manager leaves it: a link into a read-only, store-like tree."""
    store = Path(os.environ["HOME"]) / "nix" / "store" / "abc123-home-manager-files"
    store.mkdir(parents=True)
    real = store / "opencode.json"
    real.write_text(text)
    real.chmod(0o444)
    store.chmod(0o555)
    link = config_dir() / "opencode.json"
    link.symlink_to(real)
    return link


def settings(text: str) -> None:
    path = Path(os.environ["XDG_CONFIG_HOME"]) / "syncd" / "config.json5"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def syncd(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SYNCD_DETECT_PORTS": "0,0,0"}
    return subprocess.run([sys.executable, "-m", "syncd", *args], env=env, capture_output=True,
                          text=True, timeout=60, check=False)


def once(*args: str) -> subprocess.CompletedProcess[str]:
    out = syncd("once", "--no-notify", *args)
    assert out.returncode == 0, out.stdout + out.stderr
    return out


def models(path: Path, pid: str = "gw") -> dict[str, Any]:
    if not path.exists():
        return {}
    block = jsonc.parse(path.read_text()).get("provider", {}).get(pid, {})
    return dict(block.get("models") or {})


def chat_ids(fake: FakeProvider) -> set[str]:
    return {m["id"] for m in fake.models if not m.get("embedding")}


def opencode_models(binary: str, pid: str, cwd: Path) -> set[str]:
    env = {**os.environ, "OPENCODE_DISABLE_MODELS_FETCH": "1", "OPENCODE_DISABLE_AUTOUPDATE": "1",
           "OPENCODE_DISABLE_LSP_DOWNLOAD": "1"}
    out = subprocess.run([binary, "models", pid], env=env, cwd=cwd, capture_output=True, text=True,
                         timeout=120, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    config = subprocess.run([binary, "debug", "config"], env=env, cwd=cwd, capture_output=True,
                            text=True, timeout=120, check=False)
    assert config.returncode == 0, config.stderr[-2000:]
    return {line.strip().removeprefix(f"{pid}/") for line in out.stdout.splitlines() if line.strip()}


def synced_store_target(fake_provider: Factory, **kw: Any) -> tuple[FakeProvider, Path, Path]:
    """A fake gateway, a read-only store-like target defining it, and the overlay one sync made."""
    fake = fake_provider("openai", **kw)
    target = store_target(user_config(fake.base_url))
    once()
    return fake, target, config_dir() / "opencode.jsonc"


def revalidated(changed: Path) -> tuple[list[Path], Any]:
    """What the daemon does when a watched file changes: the files it watches, and the report."""
    async def run() -> tuple[list[Path], Any]:
        engine = Engine(load_settings())
        try:
            return engine.watched_files(), await engine.revalidate(changed)
        finally:
            await engine.aclose()

    return asyncio.run(run())


def each_id_once(*files: Path) -> None:
    seen: dict[str, Path] = {}
    for f in files:
        for mid in models(f):
            assert mid not in seen, f"{mid} is in both {seen[mid]} and {f}"
            seen[mid] = f


# --- the pure parts -----------------------------------------------------------------------------


def test_merged_view_offers_every_files_models_and_the_last_whitelist() -> None:
    target = {"provider": {"gw": {"options": {"baseURL": "u"}, "whitelist": ["a"],
                                  "models": {"a": {"name": "A"}, "b": {"name": "user's B"}}}}}
    overlay = {"provider": {"gw": {"whitelist": ["a", "b", "c"],
                                   "models": {"c": {"name": "C"}, "b": {"name": "syncd's B"}}}}}
    view = merged_block(Layers((target, overlay), 1, frozenset()), "gw", target["provider"]["gw"])
    assert list(view["models"]) == ["a", "b", "c"]
    assert view["models"]["b"] == {"name": "syncd's B"}  # the home file's entry when both hold one
    assert view["whitelist"] == ["a", "b", "c"]  # OpenCode replaces arrays: the later file wins
    assert view["options"] == {"baseURL": "u"}


def test_edits_of_entries_in_the_users_file_are_never_routed_to_it() -> None:
    target = {"provider": {"gw": {"models": {"mine": {}}}}}
    overlay = {"provider": {"gw": {"models": {"ours": {}}}}}
    layers = Layers((target, overlay), 1, frozenset())
    kept, blocked = route(layers, "gw", [(("models", "mine"), jsonc.REMOVE),
                                         (("models", "ours", "name"), "N"), (("models", "new"), {})])
    assert blocked == ["mine"]
    assert kept == [(("provider", "gw", "models", "ours", "name"), "N"),
                    (("provider", "gw", "models", "new"), {})]


def test_an_overlay_block_left_empty_goes_entirely() -> None:
    doc = {"provider": {"gw": {"models": {"a": {}, "b": {}}}}}
    assert removals(doc, "gw", ["a", "b"], None, drop_empty=True) == [(("provider", "gw"), jsonc.REMOVE)]
    assert removals(doc, "gw", ["a"], None, drop_empty=True) == [
        (("provider", "gw", "models", "a"), jsonc.REMOVE)]
    assert removals(doc, "gw", ["a", "b"], None, drop_empty=False) == [
        (("provider", "gw", "models", "a"), jsonc.REMOVE), (("provider", "gw", "models", "b"), jsonc.REMOVE)]


def test_a_new_overlay_says_who_maintains_it_and_carries_the_schema() -> None:
    text = skeleton("opencode.json")
    assert text.startswith("// Maintained by syncd")
    assert jsonc.parse(text) == {"$schema": SCHEMA}


def test_write_settings_are_global_and_per_target(tmp_path: Path) -> None:
    target = tmp_path / "opencode.json"
    s = parse_settings(f'{{write: "in-place", targets: {{"{target}": {{write: "overlay", '
                       f'overlay: "{tmp_path}/mine.jsonc"}}}}}}')
    assert s.target_policy(target) == (WriteMode.OVERLAY, tmp_path / "mine.jsonc")
    assert s.target_policy(tmp_path / "other.json") == (WriteMode.IN_PLACE, None)
    assert Settings().target_policy(target) == (WriteMode.AUTO, None)


@pytest.mark.parametrize("text, where", [
    ('{write: "sometimes"}', "write"),
    ('{targets: {"relative.json": {}}}', "targets.relative.json"),
    ('{targets: {"/a/opencode.json": {overlay: "/a/opencode.json"}}}', "overlay"),
    ('{targets: {"/a/opencode.json": {mode: "overlay"}}}', "targets./a/opencode.json.mode"),
])
def test_bad_write_settings_name_their_key(text: str, where: str) -> None:
    from syncd.errors import SettingsError

    with pytest.raises(SettingsError, match=r"line 1: .*" + where.replace(".", r"\.")):
        parse_settings(text)


# --- end to end, with OpenCode as the oracle ------------------------------------------------------


@pytest.mark.oracle
def test_read_only_store_target_gets_an_overlay_opencode_merges(
    opencode_bin: str, fake_provider: Factory, tmp_path: Path
) -> None:
    fake = fake_provider("openai")
    target = store_target(user_config(fake.base_url))
    before = target.read_bytes()
    first = once()
    overlay = config_dir() / "opencode.jsonc"
    assert "is read-only" in first.stdout and str(overlay).replace(os.environ["HOME"], "~") in first.stdout
    assert target.read_bytes() == before and target.is_symlink()
    text = overlay.read_text()
    assert text.startswith("// Maintained by syncd")
    doc = jsonc.parse(text)
    assert doc["$schema"] == SCHEMA and set(doc["provider"]["gw"]) == {"models"}
    assert set(models(overlay)) == chat_ids(fake)
    assert opencode_models(opencode_bin, "gw", tmp_path) == {"hand-a"} | chat_ids(fake)

    stat = overlay.stat()
    second = once()
    assert "read-only" not in second.stdout  # said once
    assert overlay.stat().st_mtime_ns == stat.st_mtime_ns and overlay.read_text() == text
    status = json.loads(syncd("status", "--json").stdout)["providers"]
    assert [row["models_in"] for row in status] == [str(overlay)]


def test_auto_writes_a_writable_target_in_place(fake_provider: Factory) -> None:
    fake = fake_provider("openai")
    target = config_dir() / "opencode.json"
    target.write_text(user_config(fake.base_url))
    out = once()
    assert set(models(target)) == {"hand-a"} | chat_ids(fake)
    assert not (config_dir() / "opencode.jsonc").exists() and "overlay" not in out.stdout


@pytest.mark.oracle
def test_a_managed_entry_deleted_from_the_overlay_stays_deleted(
    opencode_bin: str, fake_provider: Factory, tmp_path: Path
) -> None:
    fake, _, overlay = synced_store_target(fake_provider)
    gone = sorted(chat_ids(fake))[0]
    overlay.write_text(jsonc.modify(overlay.read_text(), ["provider", "gw", "models", gone], jsonc.REMOVE))
    once()
    assert gone not in models(overlay)
    assert opencode_models(opencode_bin, "gw", tmp_path) == {"hand-a"} | (chat_ids(fake) - {gone})
    (row,) = json.loads(syncd("status", "--json").stdout)["providers"]
    assert row["tombstones"] == [gone]
    assert syncd("restore", f"gw/{gone}").returncode == 0
    once()
    assert gone in models(overlay)


def test_hand_edits_in_the_overlay_survive(fake_provider: Factory) -> None:
    fake, _, overlay = synced_store_target(fake_provider, variant="openrouter")  # serves display names
    managed = sorted(chat_ids(fake))[0]
    text = jsonc.modify(overlay.read_text(), ["provider", "gw", "models", managed, "name"], "Mine now")
    text = jsonc.modify(text, ["provider", "gw", "models", "my-extra"], {"name": "My extra"})
    overlay.write_text(text.replace('"$schema"', '// my note\n  "$schema"'))
    for m in fake.models:  # upstream renames every model: the user's name still wins
        m["name"] = "Renamed " + m["id"]
    once()
    after = overlay.read_text()
    assert models(overlay)[managed]["name"] == "Mine now"
    assert models(overlay)["my-extra"] == {"name": "My extra"} and "// my note" in after
    others = chat_ids(fake) - {managed}
    assert all(models(overlay)[m]["name"] == "Renamed " + m for m in others)


@pytest.mark.oracle
def test_switching_write_modes_leaves_no_duplicate_and_no_orphan(
    opencode_bin: str, fake_provider: Factory, tmp_path: Path
) -> None:
    fake = fake_provider("openai")
    target = config_dir() / "opencode.json"
    overlay = config_dir() / "opencode.jsonc"
    target.write_text(user_config(fake.base_url))
    expected = {"hand-a"} | chat_ids(fake)
    once()
    assert set(models(target)) == expected and not overlay.exists()

    settings('{write: "overlay"}')
    once()
    assert set(models(target)) == {"hand-a"} and set(models(overlay)) == chat_ids(fake)
    assert opencode_models(opencode_bin, "gw", tmp_path) == expected

    # the user takes one of syncd's models over in the overlay: deleted, then written back by hand
    taken = sorted(chat_ids(fake))[0]
    text = jsonc.modify(overlay.read_text(), ["provider", "gw", "models", taken], jsonc.REMOVE)
    overlay.write_text(text)
    once()
    overlay.write_text(jsonc.modify(overlay.read_text(), ["provider", "gw", "models", taken],
                                    {"name": "Taken by hand"}))

    settings('{write: "in-place"}')
    out = once()
    assert "moved" in out.stdout
    assert set(models(target)) == expected - {taken}
    assert set(models(overlay)) == {taken}  # the user's entry stays where the user put it
    each_id_once(target, overlay)
    once()  # and is not copied later either
    each_id_once(target, overlay)
    assert opencode_models(opencode_bin, "gw", tmp_path) == expected

    overlay.write_text(jsonc.modify(overlay.read_text(), ["provider", "gw"], jsonc.REMOVE))
    once()
    assert jsonc.parse(overlay.read_text()).get("provider") == {}  # no block left behind
    assert set(models(target)) == expected - {taken}  # it was the user's; deleting it is theirs


def test_an_invalid_overlay_is_reported_with_its_line_and_column_and_left_alone(
    fake_provider: Factory,
) -> None:
    fake, target, overlay = synced_store_target(fake_provider)
    broken = overlay.read_text().replace('"models": {', '"models": {,', 1)
    overlay.write_text(broken)
    line = next(i for i, ln in enumerate(broken.splitlines(), 1) if '"models": {,' in ln)
    fake.models.append({"id": "new/model", "name": "New"})
    out = syncd("once", "--no-notify")
    assert out.returncode == 1
    assert f"{overlay}:{line}:" in out.stdout + out.stderr
    assert overlay.read_text() == broken and target.exists()


def test_a_target_neither_writable_nor_overlayable_fails_with_a_clear_error(
    fake_provider: Factory,
) -> None:
    fake = fake_provider("openai")
    store_target(user_config(fake.base_url))
    overlay = config_dir() / "opencode.jsonc"
    overlay.write_text('{"$schema": "https://opencode.ai/config.json"}\n')
    overlay.chmod(0o444)
    out = syncd("once", "--no-notify")
    assert out.returncode == 1
    assert "neither update it nor overlay it" in out.stdout + out.stderr
    assert overlay.read_text() == '{"$schema": "https://opencode.ai/config.json"}\n'


def test_a_provider_removed_from_the_target_leaves_no_models_in_the_overlay(
    fake_provider: Factory,
) -> None:
    fake = fake_provider("openai")
    target = config_dir() / "opencode.json"
    target.write_text(user_config(fake.base_url))
    settings('{write: "overlay"}')
    once()
    overlay = config_dir() / "opencode.jsonc"
    assert set(models(overlay)) == chat_ids(fake)
    target.write_text(jsonc.modify(target.read_text(), ["provider", "gw"], jsonc.REMOVE))
    once()
    assert "gw" not in jsonc.parse(overlay.read_text()).get("provider", {})


@pytest.mark.oracle
def test_an_overlay_named_in_the_settings_for_a_read_only_jsonc(
    opencode_bin: str, fake_provider: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = fake_provider("openai")
    target = config_dir() / "opencode.jsonc"
    target.write_text(user_config(fake.base_url))
    target.chmod(0o444)
    assert "OpenCode merges no global file after it" in syncd("once", "--no-notify").stderr
    mine = Path(os.environ["HOME"]) / "syncd-models.jsonc"
    settings(f'{{targets: {{"{target}": {{overlay: "{mine}"}}}}}}')
    monkeypatch.setenv("OPENCODE_CONFIG", str(mine))  # OpenCode loads it after its global files
    once("--config", str(target))
    assert set(models(mine)) == chat_ids(fake)
    assert opencode_models(opencode_bin, "gw", tmp_path) == {"hand-a"} | chat_ids(fake)


def test_an_edit_of_the_overlay_is_revalidated_for_its_target(fake_provider: Factory) -> None:
    fake, target, overlay = synced_store_target(fake_provider)
    gone = sorted(chat_ids(fake))[0]
    overlay.write_text(jsonc.modify(overlay.read_text(), ["provider", "gw", "models", gone], jsonc.REMOVE))
    watched, report = revalidated(overlay)
    assert target in watched and overlay in watched
    assert [p.tombstoned for p in report.providers] == [(gone,)]


def test_a_deleted_overlay_is_written_afresh_not_taken_as_deleting_every_model(
    fake_provider: Factory,
) -> None:
    fake, target, overlay = synced_store_target(fake_provider)
    overlay.unlink()
    _, report = revalidated(overlay)  # what the daemon does when it sees the file go
    assert [p.tombstoned for p in report.providers] == [()]
    once()
    assert set(models(overlay)) == chat_ids(fake) and target.exists()
    (row,) = json.loads(syncd("status", "--json").stdout)["providers"]
    assert row["tombstones"] == []


def test_syncd_add_beside_a_read_only_config_writes_the_file_syncd_can_write(
    fake_provider: Factory,
) -> None:
    fake, other = fake_provider("openai"), fake_provider("openai")
    target = store_target(user_config(fake.base_url))
    before = target.read_bytes()
    out = syncd("add", "second", other.base_url)
    assert out.returncode == 0, out.stdout + out.stderr
    overlay = config_dir() / "opencode.jsonc"
    assert jsonc.parse(overlay.read_text())["provider"]["second"]["options"]["baseURL"] == other.base_url
    once()
    assert set(models(overlay)) == chat_ids(fake)  # gw's models, beside the new block
    assert set(models(overlay, "second")) == chat_ids(other)
    assert target.read_bytes() == before


# --- doctor and status ---------------------------------------------------------------------------


def doctor_rows(name: str) -> list[Any]:
    from syncd.doctor.runner import run_checks

    checks = asyncio.run(run_checks(processes=lambda: []))
    return [c for c in checks if c.name == name]


def test_doctor_names_a_read_only_target_its_overlay_and_where_the_models_are(
    fake_provider: Factory,
) -> None:
    from syncd.doctor.checks import Status

    fake, _, overlay = synced_store_target(fake_provider)
    (row,) = doctor_rows("write")
    assert row.status is Status.OK
    assert "read-only" in row.message and "has mode 0444" in row.message
    assert f"overlay {overlay}" in row.message
    assert f"{len(chat_ids(fake))} in {overlay}" in row.message
    (shadow,) = doctor_rows("shadowing")
    assert shadow.status is Status.OK and "syncd's overlay" in shadow.message


def test_doctor_fails_a_target_that_can_be_neither_written_nor_overlaid() -> None:
    from syncd.doctor.checks import Status

    store_target(user_config("http://127.0.0.1:9/v1"))
    overlay = config_dir() / "opencode.jsonc"
    overlay.write_text("{}\n")
    overlay.chmod(0o444)
    (row,) = doctor_rows("write")
    assert row.status is Status.FAIL and "neither update it nor overlay it" in row.message
    assert out_code(["doctor"]) == 1


def test_doctor_fails_a_read_only_target_set_to_in_place() -> None:
    from syncd.doctor.checks import Status

    store_target(user_config("http://127.0.0.1:9/v1"))
    settings('{write: "in-place"}')
    (row,) = doctor_rows("write")
    assert row.status is Status.FAIL and "write: in-place" in row.message
    assert '"auto"' in row.fix


def test_doctor_warns_when_opencode_would_not_load_a_named_overlay(tmp_path: Path) -> None:
    from syncd.doctor.checks import Status

    target = config_dir() / "opencode.jsonc"
    target.write_text(user_config("http://127.0.0.1:9/v1"))
    mine = tmp_path / "syncd-models.jsonc"
    settings(f'{{targets: {{"{target}": {{write: "overlay", overlay: "{mine}"}}}}}}')
    (row,) = doctor_rows("write")
    assert row.status is Status.WARN and f"OPENCODE_CONFIG={mine}" in row.fix


def test_doctor_reports_a_writable_target_written_in_place(fake_provider: Factory) -> None:
    from syncd.doctor.checks import Status

    fake = fake_provider("openai")
    target = config_dir() / "opencode.json"
    target.write_text(user_config(fake.base_url))
    once()
    (row,) = doctor_rows("write")
    assert row.status is Status.OK and "writable, models written in place" in row.message
    assert f"{len(chat_ids(fake))} in {target}" in row.message


def out_code(argv: list[str]) -> int:
    from syncd.cli.main import main

    return main(argv)
