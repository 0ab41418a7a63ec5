"""OpenCode's catalog: exact-ID enrichment in DESIGN's order, provider wins, loading and daily refresh."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from syncd.model import ModelKind, RemoteModel
from syncd.paths import opencode_catalog_file
from syncd.providers.catalog import Catalog, load_catalog, load_catalog_async, parse_catalog

DATA: dict[str, Any] = {
    "lmstudio": {"models": {"qwen/qwen3-coder-30b": {
        "limit": {"context": 262144, "output": 65536}, "tool_call": True}}},
    "anthropic": {"models": {"claude-sonnet-4-5": {
        "limit": {"context": 200000, "output": 64000}, "tool_call": True, "reasoning": True,
        "attachment": True, "cost": {"input": 3, "output": 15},
        "modalities": {"input": ["text", "image", "pdf"], "output": ["text"]}}}},
    "openai": {"models": {"gpt-4o": {"limit": {"context": 128000, "output": 16384}},
                          "shared": {"limit": {"context": 1, "output": 1}},
                          "dall-e-x": {"modalities": {"input": ["text"], "output": ["image"]}}}},
    "azure": {"models": {"shared": {"limit": {"context": 2, "output": 2}},
                         "gpt-4o": {"limit": {"context": 999, "output": 9}}}},
}


def test_same_provider_id_first() -> None:
    model = Catalog(DATA).enrich("lmstudio", RemoteModel(id="qwen/qwen3-coder-30b"))
    assert (model.context, model.output, model.tool_call) == (262144, 65536, True)


def test_vendor_slash_model_second() -> None:
    model = Catalog(DATA).enrich("gateway", RemoteModel(id="anthropic/claude-sonnet-4-5"))
    expected = DATA["anthropic"]["models"]["claude-sonnet-4-5"]
    assert model.context == expected["limit"]["context"] and model.cost_out == 15
    assert model.input_modalities == ("text", "image", "pdf") and model.vision is True


def test_an_id_only_another_service_lists_is_not_enriched() -> None:
    catalog = Catalog(DATA)
    # only the `anthropic` catalog provider lists it, but a gateway `gw` is not Anthropic
    assert catalog.lookup("gw", "claude-sonnet-4-5") is None
    assert catalog.enrich("gw", RemoteModel(id="claude-sonnet-4-5")).context is None
    assert catalog.lookup("gw", "gpt-4o") is None
    assert catalog.lookup("gw", "gpt-4") is None  # never fuzzy


def test_provider_wins_over_catalog() -> None:
    model = RemoteModel(id="claude-sonnet-4-5", context=100, tool_call=False)
    enriched = Catalog(DATA).enrich("anthropic", model)
    assert (enriched.context, enriched.tool_call, enriched.output) == (100, False, 64000)


def test_catalog_can_say_a_model_is_not_chat() -> None:
    assert Catalog(DATA).enrich("openai", RemoteModel(id="dall-e-x")).kind is ModelKind.OTHER


def test_auto_reads_opencode_cache_and_off_is_empty(tmp_path: Path) -> None:
    path = opencode_catalog_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(DATA))
    assert load_catalog("auto", now=0, state_dir=tmp_path).has_provider("lmstudio")
    assert not load_catalog("off", now=0, state_dir=tmp_path).has_provider("lmstudio")
    path.write_text("{corrupt")
    assert len(load_catalog("auto", now=0, state_dir=tmp_path)) == 0


def test_parse_tolerates_odd_shapes() -> None:
    assert len(parse_catalog(b'{"a": 1, "b": {"models": []}, "c": {"models": {}}}')) == 1
    assert len(parse_catalog(b"[]")) == 0


async def test_url_fetched_at_most_daily(tmp_path: Path) -> None:
    calls: list[str] = []

    def serve(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return httpx.Response(200, json=DATA)

    url = "https://catalog.example/api.json"
    async with httpx.AsyncClient(transport=httpx.MockTransport(serve)) as client:
        first = await load_catalog_async(url, now=1000.0, state_dir=tmp_path, client=client)
        again = await load_catalog_async(url, now=1000.0 + 3600, state_dir=tmp_path, client=client)
        assert len(calls) == 1 and first.has_provider("azure") and again.has_provider("azure")
        await load_catalog_async(url, now=1000.0 + 25 * 3600, state_dir=tmp_path, client=client)
        assert len(calls) == 2
    assert load_catalog(url, now=0, state_dir=tmp_path).has_provider("azure")


async def test_failed_refresh_keeps_the_stale_copy(tmp_path: Path) -> None:
    ok = httpx.MockTransport(lambda r: httpx.Response(200, json=DATA))
    down = httpx.MockTransport(lambda r: httpx.Response(503))
    url = "https://catalog.example/api.json"
    async with httpx.AsyncClient(transport=ok) as client:
        await load_catalog_async(url, now=0.0, state_dir=tmp_path, client=client)
    async with httpx.AsyncClient(transport=down) as client:
        stale = await load_catalog_async(url, now=10 * 86400.0, state_dir=tmp_path, client=client)
    assert stale.has_provider("lmstudio")
