"""`syncd once|status|restore|add` end to end: the real CLI in a subprocess, fake providers on 127.0.0.1."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeProvider, default_models, wait_until

from syncd import jsonc

Factory = Callable[..., FakeProvider]
HOSTILE_ID = "x-{file:/etc/hostname}"


# --- helpers -----------------------------------------------------------------------------------


def syncd(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it, in the isolated home; local-runtime probing off unless asked for."""
    full = {**os.environ, "SYNCD_DETECT_PORTS": "0,0,0", **(env or {})}
    return subprocess.run([sys.executable, "-m", "syncd", *args], capture_output=True, text=True,
                          env=full, timeout=timeout, check=False)


def once(cfg: Path, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return syncd("once", "--config", str(cfg), "--no-notify", *args, **kw)


def once_json(cfg: Path, *args: str, **kw: Any) -> tuple[int, dict[str, Any]]:
    out = once(cfg, "--json", *args, **kw)
    assert out.returncode in (0, 1), out.stderr
    return out.returncode, json.loads(out.stdout)


def provider_json(doc: dict[str, Any], pid: str) -> dict[str, Any]:
    (target,) = doc["targets"]
    return next(p for p in target["providers"] if p["id"] == pid)


def config_text(providers: Mapping[str, str], extra: str = "") -> str:
    """A hand-written JSONC target: comments, a trailing comma, one empty `models` per provider."""
    blocks = ",\n".join(
        f'    // {pid} runs on this machine\n    "{pid}": {{\n      "npm": "@ai-sdk/openai-compatible",\n'
        f'      "name": "{pid.title()}",\n      "options": {{ "baseURL": "{url}" }},\n'
        f'      "models": {{}}\n    }}'
        for pid, url in providers.items()
    )
    return ('{\n  "$schema": "https://opencode.ai/config.json",\n  /* keep this comment */\n'
            f'{extra}  "provider": {{\n{blocks + "," if blocks else ""}\n  }},\n}}\n')


def write_config(path: Path, providers: Mapping[str, str], extra: str = "") -> Path:
    path.write_text(config_text(providers, extra))
    return path


def models_in(path: Path, pid: str) -> dict[str, Any]:
    return dict(jsonc.parse(path.read_text())["provider"][pid].get("models") or {})


def chat_ids(models: list[dict[str, Any]]) -> set[str]:
    return {m["id"] for m in models if not m.get("embedding")}


def edit(path: Path, json_path: list[Any], value: Any) -> None:
    path.write_text(jsonc.modify(path.read_text(), json_path, value))


def write_settings(tmp_path: Path, text: str) -> dict[str, str]:
    settings = tmp_path / "settings.json5"
    settings.write_text(text)
    return {"SYNCD_CONFIG": str(settings)}


def status_of(pid: str) -> dict[str, Any]:
    out = syncd("status", "--json")
    assert out.returncode == 0, out.stderr
    return next(r for r in json.loads(out.stdout)["providers"] if r["provider"] == pid)



# --- new models, and nothing else ----------------------------------------------------------------


def test_new_models_land_with_their_entry_and_nothing_else_changes(
    fake_provider: Factory, tmp_path: Path
) -> None:
    fake = fake_provider("ollama")
    cfg = write_config(tmp_path / "opencode.jsonc", {"ollama": fake.base_url})
    before = cfg.read_text()

    out = once(cfg)
    assert out.returncode == 0, out.stderr

    after = cfg.read_text()
    head, tail = before.split('"models": {}')
    assert after.startswith(head + '"models": {') and after.endswith("}" + tail)
    models = models_in(cfg, "ollama")
    assert set(models) == chat_ids(fake.models)
    for m in fake.models:
        if m["id"] not in models:
            continue
        entry = models[m["id"]]
        assert entry["name"]
        assert entry["limit"]["context"] == (m.get("num_ctx") or m["context"])
        assert entry["tool_call"] is bool(m.get("tools"))
        assert ("image" in entry["modalities"]["input"]) is bool(m.get("vision"))
        assert not {"options", "variants"} & set(entry)


def test_second_run_changes_no_byte_and_does_not_rewrite(fake_provider: Factory, tmp_path: Path) -> None:
    fake = fake_provider("ollama")
    cfg = write_config(tmp_path / "opencode.jsonc", {"ollama": fake.base_url})
    assert once(cfg).returncode == 0
    first, st = cfg.read_bytes(), cfg.stat()
    time.sleep(0.01)  # so a rewrite would show in mtime_ns

    code, doc = once_json(cfg)
    assert code == 0
    assert cfg.read_bytes() == first
    st2 = cfg.stat()
    assert (st2.st_mtime_ns, st2.st_ino) == (st.st_mtime_ns, st.st_ino)
    assert doc["targets"][0]["changed"] is False
    assert provider_json(doc, "ollama")["added"] == []


# --- hand edits, tombstones, restore ---------------------------------------------------------------


def test_hand_edited_field_survives_an_upstream_change_of_it(fake_provider: Factory, tmp_path: Path) -> None:
    fake = fake_provider("ollama")
    cfg = write_config(tmp_path / "opencode.jsonc", {"ollama": fake.base_url})
    assert once(cfg).returncode == 0
    edit(cfg, ["provider", "ollama", "models", "qwen3-coder:30b", "limit", "context"], 32768)
    edit(cfg, ["provider", "ollama", "models", "qwen3-coder:30b", "name"], "My Coder")

    qwen = next(m for m in fake.models if m["id"] == "qwen3-coder:30b")
    qwen["num_ctx"] = qwen["context"] = 131072  # upstream changes the field the user edited...
    qwen["reasoning"] = True  # ...and one the user did not touch
    qwen["digest"] = "f" * 64  # a re-pulled model: Ollama's /api/show answers are cached by digest
    code, doc = once_json(cfg)

    assert code == 0
    entry = models_in(cfg, "ollama")["qwen3-coder:30b"]
    assert entry["limit"]["context"] == 32768
    assert entry["name"] == "My Coder"
    assert entry["reasoning"] is True
    assert provider_json(doc, "ollama")["updated"] == ["qwen3-coder:30b"]


def test_hand_deleted_managed_entry_is_not_readded_until_restored(
    fake_provider: Factory, tmp_path: Path
) -> None:
    fake = fake_provider("ollama")
    cfg = write_config(tmp_path / "opencode.jsonc", {"ollama": fake.base_url})
    assert once(cfg).returncode == 0
    edit(cfg, ["provider", "ollama", "models", "gemma3:4b"], jsonc.REMOVE)
    deleted = cfg.read_bytes()

    for _ in range(2):
        out = once(cfg)
        assert out.returncode == 0, out.stderr
        assert cfg.read_bytes() == deleted
    assert "gemma3:4b" in status_of("ollama")["tombstones"]

    out = syncd("restore", "ollama/gemma3:4b")
    assert out.returncode == 0, out.stderr
    assert "gemma3:4b" in out.stdout
    assert once(cfg).returncode == 0
    assert "gemma3:4b" in models_in(cfg, "ollama")
    assert status_of("ollama")["tombstones"] == []


def test_restore_of_an_unknown_model_fails_with_a_reason(tmp_path: Path) -> None:
    out = syncd("restore", "ollama/never-deleted")
    assert out.returncode == 1 and "nothing to restore" in out.stderr
    assert syncd("restore", "no-slash").returncode == 2


# --- removal: grace, failures, empty lists, the default model --------------------------------------


@pytest.mark.parametrize("grace", [1, 3])
def test_model_gone_upstream_stays_through_grace_minus_one_runs(
    fake_provider: Factory, tmp_path: Path, grace: int
) -> None:
    env = write_settings(tmp_path, f"{{grace: {grace}}}")
    fake = fake_provider("ollama")
    cfg = write_config(tmp_path / "opencode.jsonc", {"ollama": fake.base_url})
    assert once(cfg, env=env).returncode == 0
    fake.models = [m for m in fake.models if m["id"] != "gemma3:4b"]

    for _ in range(grace - 1):
        code, doc = once_json(cfg, env=env)
        assert code == 0 and "gemma3:4b" in models_in(cfg, "ollama")
        assert provider_json(doc, "ollama")["pending"] == ["gemma3:4b"]
    code, doc = once_json(cfg, env=env)
    assert code == 0
    assert "gemma3:4b" not in models_in(cfg, "ollama")
    assert "qwen3-coder:30b" in models_in(cfg, "ollama")
    assert provider_json(doc, "ollama")["removed"] == ["gemma3:4b"]


@pytest.mark.parametrize("fault", ["500", "html", "null"])
def test_nothing_is_removed_when_the_provider_fails_or_serves_nothing(
    fake_provider: Factory, tmp_path: Path, fault: str
) -> None:
    fake = fake_provider("ollama")
    cfg = write_config(tmp_path / "opencode.jsonc", {"ollama": fake.base_url})
    assert once(cfg).returncode == 0
    synced = cfg.read_bytes()

    fake.fault = fault
    for _ in range(3):  # more than the default grace of 2
        code, doc = once_json(cfg)
        assert cfg.read_bytes() == synced
    p = provider_json(doc, "ollama")
    if fault == "null":  # an empty list is a success that removes nothing
        assert (code, p["status"], p["removed"]) == (0, "ok", [])
    else:
        assert (code, p["status"]) == (1, "error") and p["error"]


def test_empty_list_removes_nothing(fake_provider: Factory, tmp_path: Path) -> None:
    fake = fake_provider("ollama")
    cfg = write_config(tmp_path / "opencode.jsonc", {"ollama": fake.base_url})
    assert once(cfg).returncode == 0
    synced = cfg.read_bytes()
    fake.models = []
    for _ in range(3):
        out = once(cfg)
        assert out.returncode == 0, out.stderr
    assert cfg.read_bytes() == synced
    assert "empty" in out.stdout


def test_the_default_model_is_never_removed(fake_provider: Factory, tmp_path: Path) -> None:
    fake = fake_provider("ollama")
    cfg = write_config(tmp_path / "opencode.jsonc", {"ollama": fake.base_url},
                       extra='  "model": "ollama/gemma3:4b",\n  "small_model": "ollama/qwen3-coder:30b",\n')
    assert once(cfg).returncode == 0
    fake.models = [m for m in fake.models if m["id"] == "nomic-embed-text:latest"] + [
        {"id": "llama3.2:3b", "context": 131072, "tools": True}]
    for _ in range(3):
        code, doc = once_json(cfg)
        assert code == 0
    models = models_in(cfg, "ollama")
    assert {"gemma3:4b", "qwen3-coder:30b", "llama3.2:3b"} <= set(models)
    assert sorted(provider_json(doc, "ollama")["withheld"]) == ["gemma3:4b", "qwen3-coder:30b"]


# --- hostile servers -------------------------------------------------------------------------------


def test_a_model_id_with_file_substitution_is_never_written(fake_provider: Factory, tmp_path: Path) -> None:
    fake = fake_provider("openai", [{"id": HOSTILE_ID}, {"id": "good-model"},
                                    {"id": "named", "extra": {"name": "{env:HOME}"}}])
    cfg = write_config(tmp_path / "opencode.jsonc", {"gw": fake.base_url})
    out = once(cfg)
    assert out.returncode == 0, out.stderr
    text = cfg.read_text()
    assert "{file:" not in text and "{env:" not in text
    assert "good-model" in models_in(cfg, "gw")
    assert HOSTILE_ID in out.stdout  # the human summary says what it refused
    code, doc = once_json(cfg)
    assert HOSTILE_ID in provider_json(doc, "gw")["skipped"]


# --- targets: invalid, concurrent edits, links, permissions ----------------------------------------


def test_invalid_target_is_reported_with_line_and_column_and_left_alone(
    fake_provider: Factory, tmp_path: Path
) -> None:
    fake = fake_provider("ollama")
    good = config_text({"ollama": fake.base_url})
    broken = good.replace('"npm": "@ai-sdk/openai-compatible",', '"npm": "@ai-sdk/openai-compatible"', 1)
    cfg = tmp_path / "opencode.jsonc"
    cfg.write_text(broken)
    # the parser trips on the key after the missing comma
    at = broken.index('"name"')
    line, col = broken.count("\n", 0, at) + 1, at - broken.rfind("\n", 0, at)

    code, doc = once_json(cfg)
    assert code == 1
    assert doc["targets"][0]["error"].startswith(f"{cfg}:{line}:{col}")
    assert cfg.read_text() == broken
    assert fake.requests == []


def test_edit_made_while_fetching_survives_the_write(fake_provider: Factory, tmp_path: Path) -> None:
    fake = fake_provider("openai")
    fake.delay = 0.5
    cfg = write_config(tmp_path / "opencode.jsonc", {"gw": fake.base_url})
    env = write_settings(tmp_path, '{providers: {gw: {kind: "openai"}}}')
    proc = subprocess.Popen([sys.executable, "-m", "syncd", "once", "--config", str(cfg), "--no-notify"],
                            env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert wait_until(lambda: bool(fake.requests), timeout=20)
        edit(cfg, ["theme"], "tokyonight")  # the user saves while syncd waits on the provider
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    data = jsonc.parse(cfg.read_text())
    assert data["theme"] == "tokyonight"
    assert set(data["provider"]["gw"]["models"]) == chat_ids(fake.models)


def test_symlinked_target_stays_a_symlink(fake_provider: Factory, tmp_path: Path) -> None:
    fake = fake_provider("ollama")
    real = write_config(tmp_path / "dotfiles-opencode.jsonc", {"ollama": fake.base_url})
    link = tmp_path / "opencode.jsonc"
    link.symlink_to(real)
    assert once(link).returncode == 0
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert set(models_in(real, "ollama")) == chat_ids(fake.models)


def test_read_only_target_is_a_clear_error(fake_provider: Factory, tmp_path: Path) -> None:
    fake = fake_provider("ollama")
    cfg = write_config(tmp_path / "opencode.jsonc", {"ollama": fake.base_url})
    cfg.chmod(0o444)
    before = cfg.read_bytes()
    out = once(cfg)
    assert out.returncode == 1
    assert "read-only" in out.stderr and "Traceback" not in out.stderr
    assert cfg.read_bytes() == before


def test_mode_bits_are_kept(fake_provider: Factory, tmp_path: Path) -> None:
    fake = fake_provider("ollama")
    cfg = write_config(tmp_path / "opencode.jsonc", {"ollama": fake.base_url})
    cfg.chmod(0o640)
    assert once(cfg).returncode == 0
    assert models_in(cfg, "ollama")
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o640


# --- exit codes, flags, JSON -----------------------------------------------------------------------


def test_one_failing_provider_exits_1_while_the_other_syncs(fake_provider: Factory, tmp_path: Path) -> None:
    good, bad = fake_provider("ollama"), fake_provider("openai")
    bad.fault = "500"
    cfg = write_config(tmp_path / "opencode.jsonc", {"ollama": good.base_url, "gw": bad.base_url})
    code, doc = once_json(cfg)
    assert code == 1
    assert set(models_in(cfg, "ollama")) == chat_ids(good.models)
    assert models_in(cfg, "gw") == {}
    assert provider_json(doc, "gw")["status"] == "error"


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "opencode.jsonc", {})
    for args in (["once", "--check"], ["once", "--bogus"], ["frobnicate"]):
        out = syncd(*args, "--config", str(cfg)) if args[0] == "once" else syncd(*args)
        assert out.returncode == 2, (args, out.stderr)
        assert "Traceback" not in out.stderr


def test_dry_run_check_exits_4_on_drift_and_0_when_in_sync(fake_provider: Factory, tmp_path: Path) -> None:
    fake = fake_provider("ollama")
    cfg = write_config(tmp_path / "opencode.jsonc", {"ollama": fake.base_url})
    assert once(cfg, "--dry-run", "--check").returncode == 4
    assert once(cfg, "--dry-run").returncode == 0
    assert once(cfg).returncode == 0
    assert once(cfg, "--dry-run", "--check").returncode == 0


def test_dry_run_writes_nothing_and_prints_a_unified_diff(fake_provider: Factory, tmp_path: Path) -> None:
    fake = fake_provider("ollama")
    cfg = write_config(tmp_path / "opencode.jsonc", {"ollama": fake.base_url})
    before, st = cfg.read_bytes(), cfg.stat()
    out = once(cfg, "--dry-run")
    assert out.returncode == 0, out.stderr
    assert cfg.read_bytes() == before and cfg.stat().st_mtime_ns == st.st_mtime_ns
    assert f"--- {cfg}" in out.stdout and f"+++ {cfg}" in out.stdout
    added = [line for line in out.stdout.splitlines() if line.startswith("+") and not line.startswith("+++")]
    for mid in chat_ids(fake.models):
        assert any(f'"{mid}"' in line for line in added)
    assert json.loads(syncd("status", "--json").stdout)["providers"] == []


def test_json_output_has_exactly_the_documented_keys_and_types(
    fake_provider: Factory, tmp_path: Path
) -> None:
    good, bad = fake_provider("ollama"), fake_provider("openai")
    bad.fault = "401"
    cfg = write_config(tmp_path / "opencode.jsonc", {"ollama": good.base_url, "gw": bad.base_url})
    _, doc = once_json(cfg)
    assert set(doc) == {"targets"}
    (target,) = doc["targets"]
    assert set(target) == {"path", "changed", "error", "providers"}
    assert target["path"] == str(cfg) and target["changed"] is True and target["error"] is None
    lists = ("added", "removed", "updated", "skipped", "withheld", "pending")
    for p in target["providers"]:
        assert set(p) == {"id", "kind", "status", "error", "served", "ms", *lists}
        assert isinstance(p["id"], str) and p["status"] in ("ok", "error", "skipped")
        assert p["kind"] is None or isinstance(p["kind"], str)
        assert p["error"] is None or (isinstance(p["error"], str) and "\n" not in p["error"])
        assert isinstance(p["served"], int) and isinstance(p["ms"], int) and p["ms"] >= 0
        assert all(isinstance(p[k], list) and all(isinstance(i, str) for i in p[k]) for k in lists)
    ok = provider_json(doc, "ollama")
    assert (ok["kind"], ok["status"], ok["error"]) == ("ollama", "ok", None)
    assert ok["served"] == len(good.models)
    assert sorted(ok["added"]) == sorted(chat_ids(good.models))
    assert ok["skipped"] == ["nomic-embed-text:latest"]
    assert provider_json(doc, "gw")["status"] == "error"


def test_provider_flag_limits_the_run(fake_provider: Factory, tmp_path: Path) -> None:
    a, b = fake_provider("ollama"), fake_provider("openai")
    cfg = write_config(tmp_path / "opencode.jsonc", {"ollama": a.base_url, "gw": b.base_url})
    code, doc = once_json(cfg, "--provider", "ollama")
    assert code == 0
    assert set(models_in(cfg, "ollama")) == chat_ids(a.models)
    assert models_in(cfg, "gw") == {} and b.requests == []
    assert provider_json(doc, "gw")["status"] == "skipped"


def test_a_hung_provider_does_not_hold_up_the_run(fake_provider: Factory, tmp_path: Path) -> None:
    good, hung = fake_provider("ollama"), fake_provider("openai")
    hung.fault = "hang"
    env = write_settings(tmp_path, '{timeouts: {connect: "1s", read: "1s", total: "2s"}}')
    cfg = write_config(tmp_path / "opencode.jsonc", {"ollama": good.base_url, "gw": hung.base_url})
    code, doc = once_json(cfg, env=env, timeout=30)  # the guard only; the settings say 2 s
    assert code == 1
    assert set(models_in(cfg, "ollama")) == chat_ids(good.models)
    p = provider_json(doc, "gw")
    assert p["status"] == "error" and "no answer within 1s" in p["error"]


# --- status, add, detection ------------------------------------------------------------------------


def test_status_json_reports_each_synced_provider(fake_provider: Factory, tmp_path: Path) -> None:
    fake = fake_provider("ollama")
    cfg = write_config(tmp_path / "opencode.jsonc", {"ollama": fake.base_url})
    assert once(cfg).returncode == 0
    row = status_of("ollama")
    assert row["target"] == str(cfg)
    assert row["managed"] == len(chat_ids(fake.models))
    assert row["served"] == len(fake.models)
    assert row["last_success"] and row["last_error"] is None and row["tombstones"] == []
    human = syncd("status")
    assert human.returncode == 0 and "ollama" in human.stdout


def test_add_writes_the_block_and_syncs_it(fake_provider: Factory, tmp_path: Path) -> None:
    fake = fake_provider("openai", api_key="sk-very-secret")
    cfg = write_config(tmp_path / "opencode.jsonc", {})
    before = cfg.read_text()
    out = syncd("add", "my-gw", fake.base_url, "--name", "My Gateway", "--key-env", "MY_GW_KEY",
                "--config", str(cfg), env={"MY_GW_KEY": "sk-very-secret"})
    assert out.returncode == 0, out.stderr + out.stdout
    text = cfg.read_text()
    assert "sk-very-secret" not in text
    assert "/* keep this comment */" in text and text.startswith(before.split('  "provider"')[0])
    block = jsonc.parse(text)["provider"]["my-gw"]
    assert block["npm"] == "@ai-sdk/openai-compatible" and block["name"] == "My Gateway"
    assert block["options"] == {"baseURL": fake.base_url, "apiKey": "{env:MY_GW_KEY}"}
    assert set(block["models"]) == chat_ids(fake.models)


@pytest.mark.parametrize("pid", ["My_GW", "gw!", ""])
def test_add_refuses_a_bad_id(tmp_path: Path, pid: str) -> None:
    cfg = write_config(tmp_path / "opencode.jsonc", {})
    before = cfg.read_bytes()
    out = syncd("add", pid, "http://127.0.0.1:9/v1", "--config", str(cfg))
    assert out.returncode == 2 and cfg.read_bytes() == before


def test_add_refuses_a_duplicate_id(fake_provider: Factory, tmp_path: Path) -> None:
    fake = fake_provider("ollama")
    cfg = write_config(tmp_path / "opencode.jsonc", {"ollama": fake.base_url})
    before = cfg.read_bytes()
    out = syncd("add", "ollama", fake.base_url, "--config", str(cfg))
    assert out.returncode == 2 and "already exists" in out.stderr
    assert cfg.read_bytes() == before


def test_add_dry_run_writes_nothing_and_shows_the_diff(fake_provider: Factory, tmp_path: Path) -> None:
    fake = fake_provider("ollama")
    cfg = write_config(tmp_path / "opencode.jsonc", {})
    before = cfg.read_bytes()
    out = syncd("add", "box", fake.base_url, "--config", str(cfg), "--dry-run")
    assert out.returncode == 0, out.stderr
    assert cfg.read_bytes() == before
    added = [line for line in out.stdout.splitlines() if line.startswith("+")]
    assert any('"box": {' in line for line in added)  # the block itself, not only its models
    assert any(f'"{fake.base_url}"' in line for line in added)
    assert any('"qwen3-coder:30b"' in line for line in added)


def test_a_local_runtime_is_detected_into_a_new_global_config(fake_provider: Factory) -> None:
    fake = fake_provider("ollama")
    env = {"SYNCD_DETECT_PORTS": f"{fake.port},0,0"}
    out = syncd("once", "--no-notify", env=env)
    assert out.returncode == 0, out.stderr
    target = Path(os.environ["XDG_CONFIG_HOME"]) / "opencode" / "opencode.jsonc"
    data = jsonc.parse(target.read_text())
    assert data["$schema"] == "https://opencode.ai/config.json"
    block = data["provider"]["ollama"]
    assert block["npm"] == "@ai-sdk/openai-compatible" and block["name"]
    assert block["options"]["baseURL"] == fake.base_url
    assert set(block["models"]) == chat_ids(fake.models)
    assert "created ~/.config/opencode/opencode.jsonc" in out.stderr and "`ollama`" in out.stderr

    again = syncd("once", "--no-notify", env=env)
    assert again.returncode == 0 and "created" not in again.stderr and "added" not in again.stderr
    assert list(jsonc.parse(target.read_text())["provider"]) == ["ollama"]


def test_detection_skips_a_runtime_the_config_already_points_at(fake_provider: Factory) -> None:
    fake = fake_provider("ollama")
    folder = Path(os.environ["XDG_CONFIG_HOME"]) / "opencode"
    folder.mkdir(parents=True, exist_ok=True)
    target = write_config(folder / "opencode.json", {"box": fake.base_url.replace("127.0.0.1", "localhost")})
    out = syncd("once", "--no-notify", env={"SYNCD_DETECT_PORTS": f"{fake.port},0,0"})
    assert out.returncode == 0, out.stderr
    assert list(jsonc.parse(target.read_text())["provider"]) == ["box"]
    assert not (folder / "opencode.jsonc").exists()
    assert default_models("ollama")[0]["id"] in models_in(target, "box")


def test_with_a_local_runtime_an_invalid_global_config_is_reported_and_other_targets_sync(
    fake_provider: Factory, tmp_path: Path
) -> None:
    fake = fake_provider("ollama")
    folder = Path(os.environ["XDG_CONFIG_HOME"]) / "opencode"
    folder.mkdir(parents=True, exist_ok=True)
    broken = folder / "opencode.jsonc"
    broken.write_text('{\n  "provider": {\n')
    other = write_config(tmp_path / "other.jsonc", {"box": fake.base_url})
    env = {"SYNCD_DETECT_PORTS": f"{fake.port},0,0", "OPENCODE_CONFIG": str(other)}
    out = syncd("once", "--no-notify", env=env)
    assert out.returncode == 1, out.stderr
    assert broken.read_text() == '{\n  "provider": {\n'
    assert f"syncd: {broken}:2:16:" in out.stderr  # that target's error, with its path
    assert default_models("ollama")[0]["id"] in models_in(other, "box")


def test_add_to_a_config_whose_root_is_not_an_object_is_a_clean_error(tmp_path: Path) -> None:
    cfg = tmp_path / "opencode.jsonc"
    cfg.write_text("[]\n")
    out = syncd("add", "box", "http://127.0.0.1:9/v1", "--config", str(cfg))
    assert out.returncode == 1, out.stderr
    assert "internal error" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert cfg.read_text() == "[]\n"


def test_a_provider_whose_base_url_resolves_to_nothing_is_reported_not_dropped(
    tmp_path: Path,
) -> None:
    cfg = write_config(tmp_path / "opencode.jsonc", {"box": "{env:SYNCD_TEST_UNSET_BASE_URL}"})
    before = cfg.read_bytes()
    code, doc = once_json(cfg)
    assert code == 1
    box = provider_json(doc, "box")
    assert box["status"] == "error" and "baseURL" in box["error"]
    assert cfg.read_bytes() == before
