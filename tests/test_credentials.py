"""Credentials as OpenCode resolves them: {env:}/{file:}, apiKey → auth.json → one-name env, headers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from syncd.errors import SyncdError
from syncd.model import Kind
from syncd.paths import opencode_auth_file
from syncd.providers.credentials import load_auth, provider_spec, resolve


def block(**options: object) -> dict[str, object]:
    return {"npm": "@ai-sdk/openai-compatible", "options": {"baseURL": "http://h/v1", **options}}


def test_env_and_file_resolved_relative_to_config(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GW_HOST", "gw.local")
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "k.txt").write_text("sk-from-file\n")
    assert resolve("http://{env:GW_HOST}/v1", tmp_path) == "http://gw.local/v1"
    assert resolve("{file:keys/k.txt}", tmp_path) == "sk-from-file"
    assert resolve("{env:NOPE_UNSET}", tmp_path) == ""


def test_file_with_tilde_is_in_home(tmp_path: Path) -> None:
    (Path.home() / "k").write_text("home-key")
    assert resolve("{file:~/k}", tmp_path) == "home-key"


def test_missing_file_is_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(SyncdError) as info:
        resolve("{file:missing.txt}", tmp_path, config_path=tmp_path / "opencode.json")
    assert "\n" not in str(info.value) and "missing.txt" in str(info.value)


def test_file_that_is_not_utf8_is_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "key.bin").write_bytes(b"\xff\xfe binary")
    with pytest.raises(SyncdError) as info:
        resolve("{file:key.bin}", tmp_path, config_path=tmp_path / "opencode.json")
    assert "\n" not in str(info.value) and "key.bin" in str(info.value)


def test_no_base_url_is_not_a_custom_provider(tmp_path: Path) -> None:
    assert provider_spec("anthropic", {"options": {"apiKey": "x"}}, tmp_path / "o.json", {}) is None
    assert provider_spec("x", {"models": {}}, tmp_path / "o.json", {}) is None


def test_key_order_apikey_then_auth_then_env(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GW_KEY", "from-env")
    auth = {"gw": {"type": "api", "key": "from-auth"}}
    cfg = tmp_path / "opencode.json"
    both = {**block(apiKey="{env:GW_KEY}"), "env": ["OTHER"]}
    assert provider_spec("gw", both, cfg, auth).api_key.reveal() == "from-env"  # type: ignore[union-attr]
    spec = provider_spec("gw", {**block(), "env": ["GW_KEY"]}, cfg, auth)
    assert spec is not None and spec.api_key is not None and spec.api_key.reveal() == "from-auth"
    spec = provider_spec("gw", {**block(), "env": ["GW_KEY"]}, cfg, {})
    assert spec is not None and spec.api_key is not None and spec.api_key.reveal() == "from-env"
    spec = provider_spec("gw", {**block(), "env": ["GW_KEY", "X"]}, cfg, {})
    assert spec is not None and spec.api_key is None  # only a one-name env list counts
    spec = provider_spec("gw", block(apiKey=""), cfg, auth)
    assert spec is not None and spec.api_key is None  # "" still wins over auth.json


def test_headers_resolved_and_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEAM_TOKEN", "t0ken-value")
    spec = provider_spec("gw", block(headers={"X-Team": "{env:TEAM_TOKEN}"}), tmp_path / "o.json",
                         {}, kind=Kind.OPENAI)
    assert spec is not None and spec.kind is Kind.OPENAI
    assert spec.headers["X-Team"].reveal() == "t0ken-value"
    assert "t0ken-value" not in repr(spec)


def test_load_auth_missing_or_corrupt_is_empty() -> None:
    path = opencode_auth_file()
    assert load_auth() == {}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{not json")
    assert load_auth() == {}
    path.write_text(json.dumps({"gw": {"type": "api", "key": "k"}}))
    assert load_auth()["gw"]["key"] == "k"
