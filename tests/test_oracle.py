"""OpenCode itself (opencode-ai@1.18.33, offline) loads what `syncd once` writes and lists its models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import upstream
from fakes import FakeProvider

from syncd import jsonc
from syncd.model import ProviderSpec
from syncd.providers.blocks import custom_providers
from syncd.providers.discover import _static_kind  # the kind syncd infers from a block, without a probe

pytestmark = pytest.mark.oracle
Factory = Callable[..., FakeProvider]
CORPUS_SAMPLE = 3


def opencode(binary: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """OpenCode in the isolated home (HOME/XDG_* set by the autouse fixture), kept off the network."""
    env = {**os.environ, "OPENCODE_DISABLE_MODELS_FETCH": "1", "OPENCODE_DISABLE_AUTOUPDATE": "1",
           "OPENCODE_DISABLE_LSP_DOWNLOAD": "1"}
    return subprocess.run([binary, *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=120, check=False)


def listed(binary: str, pid: str, cwd: Path) -> set[str]:
    out = opencode(binary, "models", pid, cwd=cwd)
    assert out.returncode == 0, out.stderr[-2000:]
    return {line.strip() for line in out.stdout.splitlines() if line.strip()}


def syncd_once(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SYNCD_DETECT_PORTS": "0,0,0"}
    out = subprocess.run([sys.executable, "-m", "syncd", "once", "--no-notify", *args], env=env,
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    return out


def global_config(text: str, name: str = "opencode.jsonc") -> Path:
    folder = Path(os.environ["XDG_CONFIG_HOME"]) / "opencode"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def chat_ids(models: list[dict[str, Any]]) -> set[str]:
    return {m["id"] for m in models if not m.get("embedding")}


def test_opencode_lists_exactly_the_synced_models(
    opencode_bin: str, fake_provider: Factory, tmp_path: Path
) -> None:
    fake = fake_provider("ollama")
    cfg = global_config(
        '{\n  // local models\n  "provider": {\n    "ollama": {\n'
        '      "npm": "@ai-sdk/openai-compatible",\n'
        f'      "options": {{ "baseURL": "{fake.base_url}" }},\n    }},\n  }},\n}}\n'
    )
    syncd_once()
    assert listed(opencode_bin, "ollama", tmp_path) == {f"ollama/{m}" for m in chat_ids(fake.models)}
    assert opencode(opencode_bin, "debug", "config", cwd=tmp_path).returncode == 0

    fake.models = [m for m in fake.models if m["id"] != "gemma3:4b"]
    syncd_once("--config", str(cfg))
    syncd_once("--config", str(cfg))  # the default grace: gone on the second fetch without it
    assert listed(opencode_bin, "ollama", tmp_path) == {f"ollama/{m}" for m in chat_ids(fake.models)}


def test_catalog_ghosts_are_hidden_by_the_maintained_whitelist(
    opencode_bin: str, fake_provider: Factory, tmp_path: Path
) -> None:
    fake = fake_provider("lmstudio")
    ghosts = {"qwen/qwen3-coder-30b": "Qwen3 Coder 30B", "openai/gpt-oss-20b": "gpt-oss 20B"}
    catalog = {"lmstudio": {
        "id": "lmstudio", "name": "LMStudio", "env": ["LMSTUDIO_API_KEY"],
        "npm": "@ai-sdk/openai-compatible", "api": "http://127.0.0.1:1234/v1",
        "models": {mid: {"id": mid, "name": name, "tool_call": True, "reasoning": False,
                         "attachment": False, "temperature": True, "release_date": "2025-08-01",
                         "last_updated": "2025-08-01", "open_weights": True,
                         "modalities": {"input": ["text"], "output": ["text"]},
                         "cost": {"input": 0, "output": 0},
                         "limit": {"context": 131072, "output": 32768}}
                   for mid, name in ghosts.items()}}}
    cache = Path(os.environ["XDG_CACHE_HOME"]) / "opencode" / "models.json"
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(catalog))
    global_config(json.dumps({"provider": {"lmstudio": {
        "npm": "@ai-sdk/openai-compatible", "options": {"baseURL": fake.base_url}}}}, indent=2))
    assert any(g.startswith("lmstudio/") and g[9:] in ghosts
               for g in listed(opencode_bin, "lmstudio", tmp_path)), "the ghosts this test hides"

    syncd_once()
    assert listed(opencode_bin, "lmstudio", tmp_path) == {
        f"lmstudio/{m}" for m in chat_ids(fake.models)}


# --- a sample of real configs ----------------------------------------------------------------------


def _corpus_candidates(corpus: Path) -> list[tuple[Path, str]]:
    """Real configs with a custom provider OpenCode can load offline: no plugins, no {file:}."""
    out: list[tuple[Path, str]] = []
    for path in sorted(corpus.iterdir()):
        if not path.name.endswith((".json", ".jsonc")):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if "{file:" in text or '"plugin"' in text:
            continue
        try:
            data = jsonc.parse(text)
        except jsonc.JsoncError:
            continue
        for pid, block in custom_providers(data).items():
            npm = block.get("npm") or "@ai-sdk/openai-compatible"
            if npm == "@ai-sdk/openai-compatible" and not {"whitelist", "blacklist"} & set(block):
                out.append((path, pid))
                break
    return out


def _point_at(text: str, pid: str, base_url: str) -> str:
    return jsonc.modify(text, ["provider", pid, "options", "baseURL"], base_url)


def _models_of(text: str, pid: str) -> Mapping[str, Any]:
    return jsonc.parse(text)["provider"][pid].get("models") or {}


def test_corpus_configs_synced_against_a_fake_still_load_in_opencode(
    opencode_bin: str, fake_provider: Factory, corpus: Path, tmp_path: Path
) -> None:
    candidates = _corpus_candidates(corpus)
    assert len(candidates) >= CORPUS_SAMPLE, candidates
    # spread the sample over the corpus instead of taking its first files
    step = len(candidates) // CORPUS_SAMPLE
    for i, (source, pid) in enumerate(candidates[::step][:CORPUS_SAMPLE]):
        kind = _static_kind(ProviderSpec(id=pid, base_url="http://127.0.0.1:9/v1"))
        fake = (fake_provider(str(kind)) if kind is not None
                else fake_provider("openai", variant="openrouter"))
        work = tmp_path / str(i)
        work.mkdir()
        original = _point_at(source.read_text(encoding="utf-8"), pid, fake.base_url)
        cfg = global_config(original, name=f"opencode{source.suffix}")
        before = listed(opencode_bin, pid, work)

        syncd_once("--config", str(cfg), "--provider", pid)
        after_text = cfg.read_text()
        added = set(_models_of(after_text, pid)) - set(_models_of(original, pid))
        assert added == chat_ids(fake.models) - set(_models_of(original, pid)), source.name
        assert listed(opencode_bin, pid, work) == before | {f"{pid}/{m}" for m in added}, source.name
        check = opencode(opencode_bin, "debug", "config", cwd=work)
        assert check.returncode == 0, (source.name, check.stderr[-2000:])
        cfg.unlink()


# --- every config written from the upstream corpus --------------------------------------------------


def _corpus_block(name: str, fake: FakeProvider) -> dict[str, Any]:
    npm = {"anthropic": "@ai-sdk/anthropic", "gemini": "@ai-sdk/google"}.get(fake.kind,
                                                                           "@ai-sdk/openai-compatible")
    return {"npm": npm, "name": name, "options": {"baseURL": fake.base_url, "apiKey": "sk-oracle"}}


def test_opencode_accepts_every_config_written_from_the_upstream_corpus(
    opencode_bin: str, fake_provider: Factory, tmp_path: Path
) -> None:
    kinds = {"ollama": "ollama", "lmstudio": "lmstudio", "llamacpp": "llamacpp",
             "anthropic": "anthropic", "anthropic-compatible": "anthropic", "gemini": "gemini"}
    blocks: dict[str, Any] = {}
    for name in upstream.names():
        server = name.split("/")[0]
        fake = fake_provider(kinds.get(server, "openai"), corpus=name)
        pid = name.replace("/", "-").replace(".", "-").lower()
        blocks[pid] = _corpus_block(name, fake)
    global_config(json.dumps({"provider": blocks}, indent=2))
    syncd_once()
    written = jsonc.parse((Path(os.environ["XDG_CONFIG_HOME"]) / "opencode" / "opencode.jsonc").read_text())
    check = opencode(opencode_bin, "debug", "config", cwd=tmp_path)
    assert check.returncode == 0, check.stderr[-2000:]
    out = opencode(opencode_bin, "models", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    offered = {line.strip() for line in out.stdout.splitlines() if line.strip()}
    for pid, block in written["provider"].items():
        models = block.get("models") or {}
        # OpenCode hides a model whose status is "deprecated", as it does its catalog's
        shown = {f"{pid}/{mid}" for mid, entry in models.items() if entry.get("status") != "deprecated"}
        assert shown <= offered, (pid, shown - offered)
    assert sum(len(b.get("models") or {}) for b in written["provider"].values()) > 40
