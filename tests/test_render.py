"""Rendering remote models as OpenCode entries: key order, only what is known, valid."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.model import RemoteModel
from syncd.providers.normalize import unsafe_reason
from syncd.sync.render import DEFAULT_OUTPUT_CAP, MODALITIES, readable_name, render_entry

ORDER = ["name", "limit", "tool_call", "reasoning", "attachment", "modalities", "cost"]


@pytest.mark.parametrize(("model_id", "name"), [
    ("qwen3-coder:30b", "Qwen3 Coder 30B"),
    ("anthropic/claude-sonnet-4-6", "Claude Sonnet 4.6"),
    ("claude-3-5-sonnet-20241022", "Claude 3.5 Sonnet 20241022"),
    ("gpt-4-0613", "GPT 4 0613"),
    ("llama3.1:8b-instruct-q4_K_M", "Llama3.1 8B Instruct Q4_K_M"),
    ("gemma4:e4b", "Gemma4 E4B"),
    ("mixtral:8x7b", "Mixtral 8x7B"),
    ("openai/gpt-oss-120b", "GPT OSS 120B"),
    ("meta-llama/Meta-Llama-3.1-405B-Instruct", "Meta Llama 3.1 405B Instruct"),
    ("deepseek-r1:1.5b", "Deepseek R1 1.5B"),
])
def test_readable_name_of_common_ids(model_id: str, name: str) -> None:
    assert readable_name(model_id) == name


def test_readable_name_never_comes_out_empty() -> None:
    for odd in ("/", ":", "--", "a/"):
        assert readable_name(odd)


def test_provider_name_wins_over_the_readable_id() -> None:
    assert render_entry(RemoteModel("qwen3:8b", name="Qwen 3 (8B)"))["name"] == "Qwen 3 (8B)"
    assert render_entry(RemoteModel("qwen3:8b", name="  "))["name"] == readable_name("qwen3:8b")


def test_unsafe_provider_name_falls_back_to_the_readable_id() -> None:
    entry = render_entry(RemoteModel("qwen3:8b", name="{env:HOME}"))
    assert entry["name"] == readable_name("qwen3:8b")


def test_only_known_fields_are_written() -> None:
    assert render_entry(RemoteModel("m")) == {"name": readable_name("m")}


def test_limit_output_defaults_to_a_quarter_of_context_capped() -> None:
    small = render_entry(RemoteModel("m", context=8192))["limit"]
    big = render_entry(RemoteModel("m", context=1_000_000))["limit"]
    assert small == {"context": 8192, "output": 8192 // 4}
    assert big == {"context": 1_000_000, "output": DEFAULT_OUTPUT_CAP}
    given_out = render_entry(RemoteModel("m", context=200_000, output=64_000))["limit"]
    assert given_out == {"context": 200_000, "output": 64_000}


def test_no_limit_without_context_even_when_output_is_known() -> None:
    assert "limit" not in render_entry(RemoteModel("m", output=4096))


def test_cost_needs_both_prices() -> None:
    assert "cost" not in render_entry(RemoteModel("m", cost_in=1.0))
    assert render_entry(RemoteModel("m", cost_in=0.5, cost_out=2))["cost"] == {
        "input": 0.5, "output": 2}
    assert "cost" not in render_entry(RemoteModel("m", cost_in=-1, cost_out=-1))  # "dynamic"
    assert "cost" not in render_entry(RemoteModel("m", cost_in=float("nan"), cost_out=1))


def test_vision_becomes_image_input_and_attachment() -> None:
    entry = render_entry(RemoteModel("m", vision=True))
    assert entry["attachment"] is True
    assert entry["modalities"] == {"input": ["text", "image"], "output": ["text"]}


def test_unknown_modalities_are_dropped() -> None:
    entry = render_entry(RemoteModel("m", input_modalities=("text", "file", "IMAGE"),
                                     output_modalities=("text", "embeddings")))
    assert entry["modalities"] == {"input": ["text", "image"], "output": ["text"]}


def test_keys_come_in_design_order() -> None:
    m = RemoteModel("m", name="n", context=10, tool_call=True, reasoning=False, vision=True,
                    cost_in=1, cost_out=1)
    assert list(render_entry(m)) == ORDER


# --- every rendered entry is one OpenCode's schema accepts --------------------------------------

models = st.builds(
    RemoteModel, st.text(min_size=1, max_size=20).filter(lambda s: unsafe_reason(s) is None),
    name=st.none() | st.text(max_size=20),
    context=st.none() | st.integers(-5, 2_000_000), output=st.none() | st.integers(-5, 200_000),
    tool_call=st.none() | st.booleans(), reasoning=st.none() | st.booleans(),
    vision=st.none() | st.booleans(), attachment=st.none() | st.booleans(),
    input_modalities=st.none() | st.lists(st.sampled_from([*MODALITIES, "file", "x"])).map(tuple),
    output_modalities=st.none() | st.lists(st.sampled_from([*MODALITIES, "x"])).map(tuple),
    cost_in=st.none() | st.floats(allow_nan=True), cost_out=st.none() | st.floats(),
)


def check_opencode_schema(entry: dict[str, Any]) -> None:
    """The rules of DESIGN §1.4, as OpenCode checks them."""
    assert list(entry) == [k for k in ORDER if k in entry]
    assert isinstance(entry["name"], str) and entry["name"] and unsafe_reason(entry["name"]) is None
    if "limit" in entry:
        assert set(entry["limit"]) == {"context", "output"}
        assert all(isinstance(v, int) and v > 0 for v in entry["limit"].values())
    for flag in ("tool_call", "reasoning", "attachment"):
        assert isinstance(entry.get(flag, True), bool)
    if "modalities" in entry:
        assert set(entry["modalities"]) == {"input", "output"}
        for values in entry["modalities"].values():
            assert values and set(values) <= set(MODALITIES)
    if "cost" in entry:
        assert set(entry["cost"]) == {"input", "output"}
    json.dumps(entry, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(models)
def test_every_rendered_entry_is_valid_for_opencode(m: RemoteModel) -> None:
    check_opencode_schema(render_entry(m))


@pytest.mark.oracle
def test_opencode_accepts_and_lists_rendered_entries(opencode_bin: str, tmp_path: Path) -> None:
    samples = [
        RemoteModel("qwen3-coder:30b", context=262144, tool_call=True),
        RemoteModel("llava:13b", context=4096, vision=True, tool_call=False, reasoning=False),
        RemoteModel("anthropic/claude-sonnet-4-6", name="Claude Sonnet 4.6", context=200000,
                    output=64000, reasoning=True, input_modalities=("text", "image", "pdf"),
                    cost_in=3.0, cost_out=15.0),
        RemoteModel("bare"),
    ]
    config = {"$schema": "https://opencode.ai/config.json", "provider": {"syncdtest": {
        "npm": "@ai-sdk/openai-compatible", "options": {"baseURL": "http://127.0.0.1:9/v1"},
        "models": {m.id: render_entry(m) for m in samples}}}}
    (tmp_path / ".config" / "opencode").mkdir(parents=True)
    (tmp_path / ".config" / "opencode" / "opencode.json").write_text(json.dumps(config))
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / ".config"),
           "XDG_DATA_HOME": str(tmp_path / ".local/share"),
           "XDG_CACHE_HOME": str(tmp_path / ".cache"),
           "XDG_STATE_HOME": str(tmp_path / ".local/state"), "OPENCODE_DISABLE_MODELS_FETCH": "1"}
    out = subprocess.run([opencode_bin, "models", "syncdtest"], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    listed = {line.strip() for line in out.stdout.splitlines()}
    assert {f"syncdtest/{m.id}" for m in samples} <= listed
