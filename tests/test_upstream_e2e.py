"""`syncd once` against the upstream corpus: what lands in the config, what never does, what is left alone."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import structlog
from fakes import FakeProvider
from test_once_e2e import models_in, once, once_json, provider_json, write_config

from syncd.daemon.jobs import Jobs
from syncd.model import Kind, Limits, ModelKind, ProviderSpec, RemoteModel
from syncd.providers.catalog import Catalog
from syncd.providers.discover import fetch_models, make_client
from syncd.report import ProviderReport, Status, TargetReport
from syncd.sync.targets import JobSpec

Factory = Callable[..., FakeProvider]
LIMITS = Limits(connect=1, read=2, total=6)


def test_mistral_base_cards_are_written_as_the_chat_models_they_are(
        fake_provider: Factory, tmp_path: Path) -> None:
    fake = fake_provider("openai", corpus="mistral/models")
    cfg = write_config(tmp_path / "opencode.jsonc", {"mistral": fake.base_url})
    assert once(cfg).returncode == 0
    models = models_in(cfg, "mistral")
    assert set(models) == {"mistral-medium-2508", "magistral-medium-2509", "open-mistral-7b"}
    medium = models["mistral-medium-2508"]
    assert medium["limit"]["context"] == 131072 and medium["tool_call"] is True
    assert medium["modalities"]["input"] == ["text", "image"]
    assert models["magistral-medium-2509"]["reasoning"] is True
    assert models["open-mistral-7b"]["status"] == "deprecated"


def test_cache_prices_land_in_cost(fake_provider: Factory, tmp_path: Path) -> None:
    fake = fake_provider("openai", corpus="openrouter/models")
    cfg = write_config(tmp_path / "opencode.jsonc", {"openrouter": fake.base_url})
    assert once(cfg).returncode == 0
    cost = models_in(cfg, "openrouter")["openai/gpt-4o"]["cost"]
    assert cost == {"input": 2.5, "output": 10.0, "cache_read": 0.5, "cache_write": 6.25}


def test_loading_and_unloading_in_lm_studio_never_rewrites_the_config(
        fake_provider: Factory, tmp_path: Path) -> None:
    fake = fake_provider("lmstudio", corpus="lmstudio/0.4-v1-loaded")
    cfg = write_config(tmp_path / "opencode.jsonc", {"lmstudio": fake.base_url})
    assert once(cfg).returncode == 0
    assert models_in(cfg, "lmstudio")["google/gemma-4-26b-a4b"]["limit"]["context"] == 4096
    written = cfg.read_bytes()
    for scenario in ("lmstudio/0.4-v1-unloaded", "lmstudio/0.4-v1-loaded", "lmstudio/0.4-v1-unloaded"):
        fake.serve(scenario)
        code, doc = once_json(cfg)
        assert code == 0 and provider_json(doc, "lmstudio")["updated"] == [], scenario
        assert cfg.read_bytes() == written, scenario


def test_local_servers_never_get_tool_call_false_from_a_hint(fake_provider: Factory, tmp_path: Path) -> None:
    fake = fake_provider("lmstudio", models=[{"id": "plain-7b", "context": 32768, "tools": False}])
    cfg = write_config(tmp_path / "opencode.jsonc", {"lmstudio": fake.base_url})
    assert once(cfg).returncode == 0
    assert "tool_call" not in models_in(cfg, "lmstudio")["plain-7b"]  # OpenCode then sends tools


def test_a_provider_without_a_model_list_is_left_as_written_and_not_an_error(
        fake_provider: Factory, tmp_path: Path) -> None:
    fake = fake_provider("anthropic", corpus="anthropic-compatible/no-model-list")
    cfg = tmp_path / "opencode.jsonc"
    cfg.write_text(json.dumps({"provider": {"kimi": {
        "npm": "@ai-sdk/anthropic", "options": {"baseURL": fake.base_url, "apiKey": "sk-kimi"},
        "models": {"kimi-k2": {"name": "Kimi K2"}}}}}, indent=2))
    before = cfg.read_bytes()
    for _ in range(2):
        out = once(cfg)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "does not list its models" in out.stdout and "left as written" in out.stdout
    code, doc = once_json(cfg)
    row = provider_json(doc, "kimi")
    assert code == 0 and (row["status"], row["error"]) == ("ok", None)
    assert cfg.read_bytes() == before


def test_the_daemon_says_a_standing_note_once_not_every_cycle() -> None:
    jobs = Jobs(fire=_never, rng=lambda: 0.5)
    target = Path("/t/opencode.json")
    jobs.reconcile([JobSpec(target, "kimi", 60.0, "fp")], keep=())
    note = "does not list its models (HTTP 404 on http://x/v1/models); left as written"
    report = TargetReport(str(target), providers=(ProviderReport("kimi", Status.OK, warnings=(note,)),))
    with structlog.testing.capture_logs() as logs:
        for _ in range(5):
            jobs.ran(target, ["kimi"], report)
    assert [entry["event"] for entry in logs].count(note) == 1


async def _never(key: object) -> None:
    del key


# --- catalog enrichment: only from the same service ------------------------------------------------


def _catalog(**providers: dict[str, object]) -> Catalog:
    return Catalog(providers)


CHAT_PRICED = {"limit": {"context": 131072, "output": 8192}, "cost": {"input": 0.6, "output": 2.2},
               "modalities": {"input": ["text", "image", "pdf"], "output": ["text"]}}


async def _fetch(fake: FakeProvider, pid: str, kind: Kind, catalog: Catalog) -> dict[str, RemoteModel]:
    spec = ProviderSpec(id=pid, base_url=fake.base_url, kind=kind)
    async with make_client(LIMITS) as client:
        result = await fetch_models(spec, client, limits=LIMITS, catalog=catalog)
    return {m.id: m for m in result.models}


async def test_a_local_ollama_model_takes_nothing_from_ollama_clouds_catalog_entry(
        fake_provider: Factory) -> None:
    fake = fake_provider("ollama", models=[{"id": "gpt-oss:20b", "context": 131072, "tools": True}])
    catalog = _catalog(**{"ollama-cloud": {"api": "https://ollama.com/v1", "models": {
        "gpt-oss:20b": CHAT_PRICED}}})
    model = (await _fetch(fake, "ollama", Kind.OLLAMA, catalog))["gpt-oss:20b"]
    assert model.cost_in is None and model.input_modalities == ("text",)


async def test_a_gateway_takes_nothing_from_another_resellers_entry(fake_provider: Factory) -> None:
    fake = fake_provider("openai", corpus="deepseek/models")
    catalog = _catalog(reseller={"api": "https://reseller.example/v1", "models": {
        "deepseek-chat": CHAT_PRICED}})
    chat = (await _fetch(fake, "my-deepseek", Kind.OPENAI, catalog))["deepseek-chat"]
    assert chat.context is None and chat.cost_in is None and chat.input_modalities is None


async def test_the_catalog_entry_with_the_same_api_base_enriches_but_prices_no_loopback_model(
        fake_provider: Factory) -> None:
    fake = fake_provider("openai", corpus="deepseek/models")
    catalog = _catalog(deepseek={"api": fake.base_url + "/", "models": {"deepseek-chat": CHAT_PRICED}})
    chat = (await _fetch(fake, "my-deepseek", Kind.OPENAI, catalog))["deepseek-chat"]
    assert chat.context == 131072 and chat.kind in (None, ModelKind.CHAT)
    assert chat.cost_in is None  # served from 127.0.0.1: this machine


def test_the_same_service_gives_list_and_cache_prices_and_status() -> None:
    entry = {**CHAT_PRICED, "status": "deprecated",
             "cost": {"input": 3, "output": 15, "cache_read": 0.3, "cache_write": 3.75}}
    catalog = _catalog(anthropic={"api": "https://api.anthropic.com/v1", "models": {"claude-x": entry}})
    model = catalog.enrich("work", RemoteModel(id="claude-x"), base_url="https://api.anthropic.com/v1")
    assert (model.cost_in, model.cost_out, model.cache_read, model.cache_write) == (3, 15, 0.3, 3.75)
    assert model.status == "deprecated"
    unpriced = catalog.enrich("work", RemoteModel(id="claude-x"), base_url="https://api.anthropic.com/v1",
                              prices=False)
    assert unpriced.cost_in is None and unpriced.context == 131072
