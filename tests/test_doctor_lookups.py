"""`syncd doctor` catches "model not found" before OpenCode does, counts entries honestly and
names a local runtime no provider points at (issue 13, item 5). Run as the user runs it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cli_kit import block, one_json, opencode_dir, run, write_json
from fakes import FakeProvider

Factory = Callable[..., FakeProvider]
TAGS = [{"id": "qwen3:8b", "digest": "a" * 64, "context": 65536, "num_ctx": 65536, "tools": True},
        {"id": "qwen3:latest", "digest": "a" * 64, "context": 65536, "num_ctx": 65536,
         "tools": True},
        {"id": "gemma3:4b", "context": 131072, "num_ctx": 65536}]


def doctor(*args: str, **kw: Any) -> tuple[int, dict[str, Any]]:
    out = run("doctor", "--json", *args, **kw)
    return out.returncode, one_json(out)


def checks_named(doc: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [c for c in doc["checks"] if c["name"] == name]


def only(doc: dict[str, Any], name: str) -> dict[str, Any]:
    (check,) = checks_named(doc, name)
    return check


def test_a_default_model_without_an_entry_fails_although_the_provider_serves_it(
    fake_provider: Factory,
) -> None:
    fake = fake_provider("ollama", models=TAGS[:2])
    cfg = write_json(opencode_dir() / "opencode.json", {
        "model": "ollama/qwen3:latest",
        "provider": {"ollama": block(fake.base_url, {"qwen3:8b": {}})}})
    code, doc = doctor()
    assert code == 1
    check = only(doc, "model refs")
    assert check["status"] == "fail"
    assert "`model`" in check["message"] and str(cfg) in check["message"]
    assert "ollama/qwen3:latest" in check["message"] and "serves it" in check["message"]
    assert "syncd once" in check["fix"]
    # and `syncd once` does fix it: doctor then passes that check
    assert run("once", "--no-notify").returncode == 0
    code, doc = doctor()
    assert only(doc, "model refs")["status"] == "ok"


def test_a_small_model_typo_fails_with_the_closest_served_ids(fake_provider: Factory) -> None:
    fake = fake_provider("ollama", models=TAGS)
    write_json(opencode_dir() / "opencode.json", {
        "small_model": "ollama/qwen3:8c", "provider": {"ollama": block(fake.base_url)}})
    code, doc = doctor()
    check = only(doc, "model refs")
    assert code == 1 and check["status"] == "fail"
    assert "`small_model`" in check["message"] and "`qwen3:8b`" in check["message"]


def test_an_agent_model_whose_entry_is_no_longer_served_fails(
    fake_provider: Factory, tmp_path: Path
) -> None:
    fake = fake_provider("ollama", models=TAGS)
    write_json(opencode_dir() / "opencode.json", {
        "provider": {"ollama": block(fake.base_url, {"llama3:8b": {}})}})
    project = tmp_path / "p"
    write_json(project / "opencode.json", {"agent": {"build": {"model": "ollama/llama3:8b"}}})
    code, doc = doctor(cwd=project)
    check = only(doc, "model refs")
    assert code == 1 and check["status"] == "fail"
    assert "`agent.build.model`" in check["message"] and "does not serve" in check["message"]
    assert str(project / "opencode.json") in check["message"]


def test_a_mode_model_of_an_undefined_provider_fails_and_built_in_ones_pass(
    fake_provider: Factory, tmp_path: Path
) -> None:
    fake = fake_provider("ollama", models=TAGS)
    extra = write_json(tmp_path / "extra.json", {
        "model": "anthropic/claude-sonnet-4-5",
        "mode": {"review": {"model": "olama/qwen3:8b"}}})
    write_json(opencode_dir() / "opencode.json", {
        "provider": {"ollama": block(fake.base_url, {"qwen3:8b": {}})}})
    code, doc = doctor(env={"OPENCODE_CONFIG": str(extra)})
    (check,) = checks_named(doc, "model refs")
    assert code == 1 and "`mode.review.model`" in check["message"]
    assert "provider `olama`" in check["message"] and "`ollama`" in check["message"]


def test_references_that_resolve_pass(fake_provider: Factory) -> None:
    fake = fake_provider("ollama", models=TAGS)
    write_json(opencode_dir() / "opencode.json", {
        "model": "ollama/qwen3:8b", "agent": {"a": {"model": "ollama/gemma3:4b"}},
        "provider": {"ollama": block(fake.base_url, {"qwen3:8b": {}, "gemma3:4b": {}})}})
    code, doc = doctor()
    check = only(doc, "model refs")
    assert check["status"] == "ok" and "2 model references" in check["message"]


def test_models_check_counts_hand_written_and_managed_entries_apart(
    fake_provider: Factory,
) -> None:
    fake = fake_provider("ollama", models=TAGS)
    cfg = write_json(opencode_dir() / "opencode.json", {
        "provider": {"ollama": block(fake.base_url, {"mine:1b": {"id": "gemma3:4b"}})}})
    assert run("once", "--no-notify").returncode == 0  # syncd adds qwen3:8b (gemma3:4b is there)
    assert "qwen3:8b" in cfg.read_text()
    _, doc = doctor()
    check = only(doc, "models ollama")
    assert check["status"] == "ok", check
    assert "1 hand-written entry, 2 managed by syncd" in check["message"]


def test_a_local_runtime_no_provider_points_at_is_named(
    fake_provider: Factory, tmp_path: Path
) -> None:
    fake = fake_provider("ollama", models=TAGS)
    env = {"SYNCD_DETECT_PORTS": f"{fake.port},0,0"}
    write_json(opencode_dir() / "opencode.json", {"provider": {}})
    _, doc = doctor(env=env)
    check = only(doc, "runtimes")
    assert check["status"] == "warn"
    assert f"answers at http://127.0.0.1:{fake.port}" in check["message"]
    assert f"syncd add ollama {fake.base_url}" in check["fix"]
    # a provider in $OPENCODE_CONFIG (not a target doctor was given) counts as pointing at it
    extra = write_json(tmp_path / "extra.json", {
        "provider": {"box": block(fake.base_url.replace("127.0.0.1", "localhost"))}})
    _, doc = doctor(env={**env, "OPENCODE_CONFIG": str(extra)})
    assert only(doc, "runtimes")["status"] == "ok"
