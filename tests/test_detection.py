"""Detection respects the user (issue 13, item 4): a block they delete stays deleted, a runtime any
merged config already serves is left alone, and every new file or block is announced and previewed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cli_kit import block, one_json, opencode_dir, run, write_json
from fakes import FakeProvider

from syncd import jsonc, paths
from syncd.sync.records import VERSION
from syncd.sync.state import load_state, save_state

Factory = Callable[..., FakeProvider]


def detecting(fake: FakeProvider) -> dict[str, str]:
    return {"SYNCD_DETECT_PORTS": f"{fake.port},0,0"}


def providers_in(path: Path) -> dict[str, Any]:
    return dict(jsonc.parse(path.read_text()).get("provider") or {})


def detected_ollama(fake_provider: Factory) -> tuple[FakeProvider, dict[str, str], Path]:
    """A fake Ollama that `syncd once` has detected into a new global config."""
    fake = fake_provider("ollama")
    env = detecting(fake)
    assert run("once", "--no-notify", env=env).returncode == 0
    target = opencode_dir() / "opencode.jsonc"
    assert "ollama" in providers_in(target)
    return fake, env, target


def test_a_deleted_detected_block_stays_deleted_and_status_and_doctor_say_how_to_undo(
    fake_provider: Factory,
) -> None:
    fake, env, target = detected_ollama(fake_provider)
    target.write_text('{\n  // no local models for me\n  "provider": {}\n}\n')
    out = run("once", "--no-notify", env=env)
    assert out.returncode == 0, out.stderr
    assert "you deleted provider `ollama`" in out.stderr and "syncd restore ollama" in out.stderr
    for _ in range(2):
        again = run("once", "--no-notify", env=env)
        assert again.returncode == 0 and "ollama" not in again.stderr
    assert target.read_text() == '{\n  // no local models for me\n  "provider": {}\n}\n'

    status = run("status", env=env)
    assert "declined" in status.stdout and "syncd restore ollama" in status.stdout
    declined = one_json(run("status", "--json", env=env))["declined"]
    assert [(d["provider"], d["base_url"]) for d in declined] == [("ollama", fake.base_url)]
    doctor = one_json(run("doctor", "--json", env=env))
    (check,) = [c for c in doctor["checks"] if c["name"] == "runtimes"]
    assert "syncd restore ollama" in check["message"]


def test_restore_lets_detection_add_the_block_again_with_all_its_models(
    fake_provider: Factory,
) -> None:
    _, env, target = detected_ollama(fake_provider)
    first = set(providers_in(target)["ollama"]["models"])
    target.write_text("{}\n")
    assert run("once", "--no-notify", env=env).returncode == 0
    out = run("restore", "ollama", env=env)
    assert out.returncode == 0, out.stderr
    assert run("once", "--no-notify", env=env).returncode == 0
    # not an empty `models` with every model recorded as deleted by hand
    assert set(providers_in(target)["ollama"]["models"]) == first
    assert one_json(run("status", "--json"))["providers"][0]["tombstones"] == []


def test_a_runtime_a_provider_in_opencode_config_points_at_is_not_added_again(
    fake_provider: Factory, tmp_path: Path
) -> None:
    fake = fake_provider("ollama")
    extra = write_json(tmp_path / "work.json", {
        "provider": {"local": block(fake.base_url.replace("127.0.0.1", "localhost"))}})
    glob = write_json(opencode_dir() / "opencode.json", {"model": "x/y"})
    out = run("once", "--no-notify", env={**detecting(fake), "OPENCODE_CONFIG": str(extra)})
    assert out.returncode == 0, out.stderr
    assert "provider" not in jsonc.parse(glob.read_text())
    assert not (opencode_dir() / "opencode.jsonc").exists()
    assert set(providers_in(extra)["local"]["models"])  # the provider itself was synced


def test_dry_run_announces_the_new_file_before_the_table_and_shows_the_block_in_the_diff(
    fake_provider: Factory,
) -> None:
    fake = fake_provider("ollama")
    out = run("once", "--no-notify", "--dry-run", env=detecting(fake), merged=True)
    assert out.returncode == 0, out.stdout
    target = opencode_dir() / "opencode.jsonc"
    assert not target.exists() and load_state().detected == {}
    lines = out.stdout.splitlines()
    notice = next(i for i, line in enumerate(lines) if line.startswith("syncd: would create"))
    table = next(i for i, line in enumerate(lines) if line.lstrip().startswith("provider "))
    assert notice < table and "~/.config/opencode/opencode.jsonc" in lines[notice]
    added = [line[1:] for line in lines if line.startswith("+") and not line.startswith("+++")]
    assert '    "ollama": {' in added and f'        "baseURL": "{fake.base_url}"' in added
    assert any('"qwen3-coder:30b"' in line for line in added)  # its models, too


def test_a_block_added_to_an_existing_config_is_announced_before_the_table(
    fake_provider: Factory,
) -> None:
    fake = fake_provider("ollama")
    target = opencode_dir() / "opencode.jsonc"
    target.write_text('{\n  "model": "x/y", // mine\n}\n')
    out = run("once", "--no-notify", env=detecting(fake), merged=True)
    assert out.returncode == 0, out.stdout
    lines = out.stdout.splitlines()
    notice = next(i for i, line in enumerate(lines) if line.startswith("syncd: added provider"))
    table = next(i for i, line in enumerate(lines) if line.lstrip().startswith("provider "))
    assert notice < table and "to ~/.config/opencode/opencode.jsonc" in lines[notice]
    assert '"model": "x/y", // mine' in target.read_text()


def test_add_over_a_deleted_block_fills_its_models_again(
    fake_provider: Factory, tmp_path: Path
) -> None:
    fake = fake_provider("ollama")
    cfg = write_json(tmp_path / "opencode.json", {"provider": {"box": block(fake.base_url)}})
    assert run("once", "--no-notify", "--config", str(cfg)).returncode == 0
    served = set(providers_in(cfg)["box"]["models"])
    cfg.write_text("{}\n")  # the whole block, deleted by hand
    out = run("add", "box", fake.base_url, "--config", str(cfg))
    assert out.returncode == 0, out.stderr
    assert set(providers_in(cfg)["box"]["models"]) == served


def test_a_version_1_state_file_is_migrated_keeping_everything() -> None:
    f = paths.state_dir() / "state.json"
    f.parent.mkdir(parents=True)
    v1 = {"version": 1, "targets": {"/t": {"providers": {"p": {
        "managed": {"m": {"name": "M"}}, "tombstones": ["gone"], "failures": 2,
        "last_error": "timeout"}}}}}
    f.write_text(json.dumps(v1))
    state = load_state()
    ps = state.provider("/t", "p")
    assert (dict(ps.managed), ps.tombstones, ps.failures) == ({"m": {"name": "M"}},
                                                              {"gone"}, 2)
    assert ps.failing_since is None and state.detected == {}
    save_state(state)
    assert json.loads(f.read_text())["version"] == VERSION == 2
