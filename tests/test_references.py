"""A model that `model`, `small_model`, `agent.*.model` or `mode.*.model` names, in any config OpenCode
merges, is written under exactly that ID: alias folding and filters never hide it (issue 13, item 3)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_kit import block, one_json, opencode_dir, run, write_json
from fakes import FakeProvider
from test_oracle import listed, opencode

from syncd import jsonc
from syncd.sync.merged import opencode_files
from syncd.sync.refs import ModelRef, model_refs

Factory = Callable[..., FakeProvider]
# Ollama serves one weights file under two tags (one digest): `aliases: "dedupe"` folds them
TWIN_TAGS = [
    {"id": "qwen3:8b", "digest": "a" * 64, "context": 40960, "tools": True, "arch": "qwen3"},
    {"id": "qwen3:latest", "digest": "a" * 64, "context": 40960, "tools": True, "arch": "qwen3"},
    {"id": "gemma3:4b", "digest": "b" * 64, "context": 131072, "arch": "gemma3"},
    {"id": "gemma3:latest", "digest": "b" * 64, "context": 131072, "arch": "gemma3"},
    {"id": "llama3:8b", "digest": "c" * 64, "context": 8192, "arch": "llama"},
    {"id": "llama3:latest", "digest": "c" * 64, "context": 8192, "arch": "llama"},
]


def models_of(path: Path, pid: str = "ollama") -> set[str]:
    return set(jsonc.parse(path.read_text())["provider"][pid].get("models") or {})


def test_model_refs_read_every_key_opencode_resolves_and_split_on_the_first_slash() -> None:
    config = {"model": "router/qwen/qwen3-coder", "small_model": "ollama/qwen3:latest",
              "agent": {"build": {"model": "ollama/llama3:latest"}, "plan": {"temperature": 1}},
              "mode": {"review": {"model": "lm/x"}}, "provider": {"ollama": {"model": "no/pe"}}}
    assert model_refs(config) == [
        ModelRef("model", "router", "qwen/qwen3-coder"),
        ModelRef("small_model", "ollama", "qwen3:latest"),
        ModelRef("agent.build.model", "ollama", "llama3:latest"),
        ModelRef("mode.review.model", "lm", "x"),
    ]
    assert model_refs({"model": "no-slash", "small_model": "/x", "agent": []}) == []


def test_a_referenced_latest_tag_is_written_and_opencode_offers_it(
    opencode_bin: str, fake_provider: Factory, tmp_path: Path
) -> None:
    fake = fake_provider("ollama", models=TWIN_TAGS[:2])
    cfg = write_json(opencode_dir() / "opencode.jsonc", {
        "model": "ollama/qwen3:latest", "provider": {"ollama": block(fake.base_url)}})
    out = run("once", "--no-notify")
    assert out.returncode == 0, out.stderr
    assert "qwen3:latest" in models_of(cfg)
    assert "ollama/qwen3:latest" in listed(opencode_bin, "ollama", tmp_path)
    assert opencode(opencode_bin, "debug", "config", cwd=tmp_path).returncode == 0


def test_ids_named_by_every_merged_config_survive_dedupe(
    fake_provider: Factory, tmp_path: Path
) -> None:
    fake = fake_provider("ollama", models=TWIN_TAGS)
    cfg = write_json(opencode_dir() / "opencode.json", {"provider": {"ollama": block(fake.base_url)}})
    extra = write_json(tmp_path / "env.json", {"small_model": "ollama/qwen3:latest"})
    project = tmp_path / "project"
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    write_json(project / "opencode.json", {"agent": {"build": {"model": "ollama/gemma3:latest"}}})
    write_json(project / "sub" / ".opencode" / "opencode.jsonc",
               {"mode": {"review": {"model": "ollama/llama3:latest"}}})
    out = run("once", "--no-notify", "--json", env={"OPENCODE_CONFIG": str(extra)},
              cwd=project / "sub")
    assert out.returncode == 0, out.stderr
    assert models_of(cfg) >= {"qwen3:latest", "gemma3:latest", "llama3:latest"}
    skipped = {p["id"]: p["skipped"] for t in one_json(out)["targets"] for p in t["providers"]}
    assert not {"qwen3:latest", "gemma3:latest", "llama3:latest"} & set(skipped["ollama"])
    # one entry per digest still holds for the tags nobody names
    assert len(models_of(cfg)) == 3


def test_a_referenced_tag_beside_the_one_already_written_adds_it_and_keeps_the_other(
    fake_provider: Factory,
) -> None:
    fake = fake_provider("ollama", models=TWIN_TAGS[:2])
    cfg = write_json(opencode_dir() / "opencode.json", {"provider": {"ollama": block(fake.base_url)}})
    assert run("once", "--no-notify").returncode == 0
    assert models_of(cfg) == {"qwen3:8b"}
    cfg.write_text(jsonc.modify(cfg.read_text(), ["model"], "ollama/qwen3:latest"))
    for _ in range(3):  # past the grace: the tag already there is not churned out
        assert run("once", "--no-notify").returncode == 0
    assert models_of(cfg) == {"qwen3:8b", "qwen3:latest"}


def test_a_referenced_id_is_written_although_a_glob_excludes_it(
    fake_provider: Factory, tmp_path: Path
) -> None:
    fake = fake_provider("ollama", models=TWIN_TAGS[:2])
    settings = tmp_path / "config.json5"
    settings.write_text('{ aliases: "keep", exclude: ["*:latest"] }\n')
    cfg = write_json(opencode_dir() / "opencode.json", {
        "agent": {"build": {"model": "ollama/qwen3:latest"}},
        "provider": {"ollama": block(fake.base_url)}})
    out = run("once", "--no-notify", env={"SYNCD_CONFIG": str(settings)})
    assert out.returncode == 0, out.stderr
    assert models_of(cfg) == {"qwen3:8b", "qwen3:latest"}


def test_a_model_an_agent_uses_is_withheld_not_removed_when_it_goes(
    fake_provider: Factory, tmp_path: Path
) -> None:
    fake = fake_provider("ollama", models=TWIN_TAGS[:3])
    cfg = write_json(opencode_dir() / "opencode.json", {"provider": {"ollama": block(fake.base_url)}})
    project = tmp_path / "p"
    write_json(project / "opencode.json", {"agent": {"docs": {"model": "ollama/gemma3:4b"}}})
    assert run("once", "--no-notify", cwd=project).returncode == 0
    assert "gemma3:4b" in models_of(cfg)
    fake.models = TWIN_TAGS[:2]
    for _ in range(3):
        out = run("once", "--no-notify", "--json", cwd=project)
    (target,) = one_json(out)["targets"]
    assert target["providers"][0]["withheld"] == ["gemma3:4b"]
    assert "gemma3:4b" in models_of(cfg)


def test_opencode_files_follow_opencode_s_own_order_and_stop_at_the_git_root(
    tmp_path: Path,
) -> None:
    glob = write_json(opencode_dir() / "opencode.jsonc", {})
    env_file = write_json(tmp_path / "env.json", {})
    above = write_json(tmp_path / "opencode.json", {})  # above the git root: not OpenCode's
    project = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    root_file = write_json(project / "opencode.json", {})
    leaf = write_json(project / "a" / "opencode.jsonc", {})
    dot = write_json(project / "a" / ".opencode" / "opencode.json", {})
    home_dot = write_json(Path.home() / ".opencode" / "opencode.jsonc", {})
    env = {**os.environ, "OPENCODE_CONFIG": str(env_file)}
    found = opencode_files(project / "a", env)
    assert found == [glob, env_file, leaf, root_file, dot, home_dot]
    assert above not in found
    assert opencode_files(project / "a", {**env, "OPENCODE_DISABLE_PROJECT_CONFIG": "1"}) == [
        glob, env_file, home_dot]


def test_opencode_itself_loads_the_files_syncd_reads(opencode_bin: str, tmp_path: Path) -> None:
    """The oracle agrees with opencode_files: each file's agent shows up in OpenCode's merged config."""
    project = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    write_json(opencode_dir() / "opencode.jsonc", {"agent": {"g": {"model": "x/g"}}})
    write_json(tmp_path / "opencode.json", {"agent": {"above": {"model": "x/above"}}})
    write_json(project / "opencode.json", {"agent": {"root": {"model": "x/root"}}})
    write_json(project / "a" / "opencode.jsonc", {"agent": {"leaf": {"model": "x/leaf"}}})
    write_json(project / "a" / ".opencode" / "opencode.json", {"agent": {"dot": {"model": "x/dot"}}})
    write_json(Path.home() / ".opencode" / "opencode.jsonc", {"agent": {"home": {"model": "x/home"}}})
    out = opencode(opencode_bin, "debug", "config", cwd=project / "a")
    assert out.returncode == 0, out.stderr[-2000:]
    theirs = {a["model"] for a in json.loads(out.stdout)["agent"].values() if "model" in a}
    ours = {r.full for p in opencode_files(project / "a")
            for r in model_refs(jsonc.parse(p.read_text()))}
    assert {m for m in theirs if m.startswith("x/")} == ours


@pytest.mark.parametrize("key", ["model", "small_model"])
def test_top_level_references_still_protect_removal(key: str) -> None:
    from syncd.sync.plan import protected_models
    assert protected_models({key: "ollama/a:b"}, "ollama") == {"a:b"}
