"""Each provider kind against its fake server: what syncd learns, how it detects the kind, what it sends."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from syncd.errors import AuthFailed, FetchTimeout
from syncd.model import FetchResult, Kind, Limits, ModelKind, ProviderSpec, RemoteModel, Secret
from syncd.providers.discover import FetchCache, detect_kind, fetch_models, make_client
from tests import fakes
from tests.fakes import FakeProvider, default_models, digest_of

LIMITS = Limits(connect=1, read=1, total=5)
Factory = Callable[..., FakeProvider]
fake_provider = fakes.fake_provider  # the lead may move this into conftest.py


def spec_of(fake: FakeProvider, kind: Kind | None, **kw: Any) -> ProviderSpec:
    return ProviderSpec(id=kw.pop("pid", "p"), base_url=fake.base_url, kind=kind, **kw)


async def fetch(spec: ProviderSpec, cache: FetchCache | None = None) -> FetchResult:
    async with make_client(LIMITS) as client:
        return await fetch_models(spec, client, limits=LIMITS, cache=cache)


def by_id(result: FetchResult) -> dict[str, RemoteModel]:
    return {m.id: m for m in result.models}


@pytest.mark.parametrize("variant", [None, "tags_caps"])
async def test_ollama_models_from_tags_and_show(fake_provider: Factory, variant: str | None) -> None:
    fake = fake_provider("ollama", variant=variant)
    result = await fetch(spec_of(fake, Kind.OLLAMA))
    models = by_id(result)
    assert set(models) == {m["id"] for m in fake.models}
    coder, gemma, embed = (models[m["id"]] for m in fake.models)
    assert coder.tool_call is True and gemma.tool_call is False  # a present list is complete
    assert gemma.vision is True and coder.vision is False
    assert embed.kind is ModelKind.EMBEDDING and coder.kind is ModelKind.CHAT
    assert coder.digest == digest_of(fake.models[0])
    # /api/tags never carries the Modelfile, so /api/show is asked even when tags has capabilities
    assert len([r for r in fake.requests if r.path == "/api/show"]) == len(fake.models)
    assert (coder.context, coder.context_served) == (fake.models[0]["num_ctx"], True)
    assert (gemma.context, gemma.context_served) == (fake.models[1]["context"], False)


async def test_ollama_show_is_cached_by_digest(fake_provider: Factory) -> None:
    fake = fake_provider("ollama")
    cache = FetchCache()
    await fetch(spec_of(fake, Kind.OLLAMA), cache)
    before = len(fake.requests)
    second = await fetch(spec_of(fake, Kind.OLLAMA), FetchCache.from_json(cache.to_json()))
    assert "/api/show" not in [r.path for r in fake.requests[before:]]
    assert by_id(second)["qwen3-coder:30b"].context == 65536


async def test_ollama_shows_of_models_no_longer_listed_are_forgotten(fake_provider: Factory) -> None:
    fake = fake_provider("ollama")
    cache, root = FetchCache(), fake.base_url.removesuffix("/v1")
    await fetch(spec_of(fake, Kind.OLLAMA), cache)
    kept, gone = fake.models[:2], fake.models[2]
    assert cache.show(root, digest_of(gone)) is not None
    fake.models = kept  # `ollama rm`
    await fetch(spec_of(fake, Kind.OLLAMA), cache)
    assert cache.show(root, digest_of(gone)) is None
    assert all(cache.show(root, digest_of(m)) is not None for m in kept)
    assert digest_of(gone) not in str(cache.to_json())  # nor in the saved file
    fake.models = []
    await fetch(spec_of(fake, Kind.OLLAMA), cache)
    assert cache.shows == {}


async def test_ollama_show_failure_leaves_fields_unknown(fake_provider: Factory) -> None:
    fake = fake_provider("ollama")
    fake.fault, fake.fault_paths = "500", ("/api/show",)
    models = by_id(await fetch(spec_of(fake, Kind.OLLAMA)))
    assert set(models) == {m["id"] for m in fake.models}
    assert all(m.context is None and m.tool_call is None for m in models.values())


@pytest.mark.parametrize("variant", [None, "legacy"])
async def test_lmstudio_native_api_then_v0(fake_provider: Factory, variant: str | None) -> None:
    fake = fake_provider("lmstudio", variant=variant)
    fake.models[0]["loaded_context"] = 16384
    models = by_id(await fetch(spec_of(fake, Kind.LMSTUDIO)))
    first, second, third = (models[m["id"]] for m in fake.models)
    assert second.vision is True and third.kind is ModelKind.EMBEDDING
    if variant is None:
        assert first.context == 16384  # the loaded instance's context beats max_context_length
        assert first.name == fake.models[0]["name"] and first.tool_call is True
    else:  # 0.3's documented /api/v0 says no loaded context: the maximum, flagged as such
        assert "/api/v0/models" in fake.paths()
        assert (first.context, first.context_served) == (fake.models[0]["context"], False)


async def test_lmstudio_falls_back_to_openai_models(fake_provider: Factory) -> None:
    fake = fake_provider("lmstudio", variant="legacy")
    fake.fault, fake.fault_paths = "html", ("/api/v0",)
    models = by_id(await fetch(spec_of(fake, Kind.LMSTUDIO)))
    assert set(models) == {m["id"] for m in fake.models}
    assert fake.paths()[-1] == "/v1/models"


async def test_llamacpp_props_context_and_tools(fake_provider: Factory) -> None:
    fake = fake_provider("llamacpp", [{"id": "qwen.gguf", "context": 131072, "num_ctx": 32768,
                                       "tools": True}])
    (model,) = (await fetch(spec_of(fake, Kind.LLAMACPP))).models
    assert model.context == 32768 and model.tool_call is True and model.vision is False


async def test_llamacpp_without_props_uses_n_ctx_train(fake_provider: Factory) -> None:
    fake = fake_provider("llamacpp", [{"id": "m.gguf", "context": 8192}])
    fake.fault, fake.fault_paths = "500", ("/props",)
    (model,) = (await fetch(spec_of(fake, Kind.LLAMACPP))).models
    assert model.context == 8192 and model.tool_call is None


async def test_openai_generic_lists_ids_only(fake_provider: Factory) -> None:
    fake = fake_provider("openai")
    models = by_id(await fetch(spec_of(fake, Kind.OPENAI)))
    chat = models[fake.models[0]["id"]]
    assert chat.context is None and chat.tool_call is None and chat.kind is None
    assert models[fake.models[2]["id"]].kind is ModelKind.EMBEDDING  # "embed" in the ID


async def test_vllm_max_model_len(fake_provider: Factory) -> None:
    fake = fake_provider("openai", variant="vllm")
    models = by_id(await fetch(spec_of(fake, Kind.OPENAI)))
    assert [models[m["id"]].context for m in fake.models] == [m["context"] for m in fake.models]


async def test_openrouter_extras(fake_provider: Factory) -> None:
    fake = fake_provider("openai", variant="openrouter")
    models = by_id(await fetch(spec_of(fake, Kind.OPENAI)))
    coder, gemma = models[fake.models[0]["id"]], models[fake.models[1]["id"]]
    assert coder.name == fake.models[0]["name"]
    assert coder.context == fake.models[0]["context"] and coder.output == fake.models[0]["output"]
    assert coder.tool_call is True and gemma.tool_call is False
    assert gemma.vision is True and gemma.input_modalities == ("text", "image")
    assert coder.cost_in == pytest.approx(fake.models[0]["cost_in"])
    assert coder.cost_out == pytest.approx(fake.models[0]["cost_out"])


async def test_litellm_model_info_enriches(fake_provider: Factory) -> None:
    fake = fake_provider("openai", variant="litellm", api_key="sk-master")
    spec = spec_of(fake, Kind.OPENAI, pid="litellm", api_key=Secret("sk-master"))
    models = by_id(await fetch(spec))
    coder = models[fake.models[0]["id"]]
    assert coder.context == fake.models[0]["context"] and coder.tool_call is True
    assert coder.cost_in == pytest.approx(fake.models[0]["cost_in"])
    assert models[fake.models[2]["id"]].kind is ModelKind.EMBEDDING
    assert "/model/info" in fake.paths()
    assert all(r.headers.get("authorization") == "Bearer sk-master" for r in fake.requests)


async def test_anthropic_paginates_with_its_headers(fake_provider: Factory) -> None:
    fake = fake_provider("anthropic", api_key="sk-ant-xyz")
    fake.page_size = 2
    result = await fetch(spec_of(fake, None, npm="@ai-sdk/anthropic", api_key=Secret("sk-ant-xyz")))
    assert result.kind is Kind.ANTHROPIC
    assert [m.id for m in result.models] == [m["id"] for m in fake.models]
    assert result.models[0].name == fake.models[0]["name"]
    assert len(fake.requests) == 2
    assert all(r.headers["x-api-key"] == "sk-ant-xyz" and r.headers["anthropic-version"]
               and "authorization" not in r.headers for r in fake.requests)


async def test_anthropic_wrong_key_is_auth(fake_provider: Factory) -> None:
    fake = fake_provider("anthropic", api_key="right")
    with pytest.raises(AuthFailed):
        await fetch(spec_of(fake, Kind.ANTHROPIC, api_key=Secret("wrong")))


async def test_gemini_paginates_and_strips_prefix(fake_provider: Factory) -> None:
    fake = fake_provider("gemini", api_key="AIza-key")
    fake.page_size = 2
    result = await fetch(spec_of(fake, None, npm="@ai-sdk/google", api_key=Secret("AIza-key")))
    models = by_id(result)
    assert list(models) == [m["id"] for m in fake.models]
    flash = models["gemini-2.5-flash"]
    assert (flash.context, flash.output, flash.reasoning) == (1048576, 65536, True)
    assert models["text-embedding-004"].kind is ModelKind.EMBEDDING
    assert [r.headers["x-goog-api-key"] for r in fake.requests] == ["AIza-key"] * 2


async def test_gemini_invalid_key_400_is_auth(fake_provider: Factory) -> None:
    fake = fake_provider("gemini", api_key="right")
    with pytest.raises(AuthFailed):
        await fetch(spec_of(fake, Kind.GEMINI, api_key=Secret("wrong")))


@pytest.mark.parametrize("kind", ["ollama", "lmstudio", "llamacpp", "openai"])
async def test_kind_detected_by_probe_and_cached(fake_provider: Factory, kind: str) -> None:
    fake = fake_provider(kind)
    cache = FetchCache()
    spec = ProviderSpec(id="mine", base_url=fake.base_url)
    async with make_client(LIMITS) as client:
        assert await detect_kind(spec, client, cache) is Kind(kind)
        probes = len(fake.requests)
        assert await detect_kind(spec, client, FetchCache.from_json(cache.to_json())) is Kind(kind)
    assert len(fake.requests) == probes  # the second answer came from the cache


async def test_kind_from_id_port_and_npm_without_probing() -> None:
    async with make_client(LIMITS) as client:
        for spec, kind in [
            (ProviderSpec(id="my-ollama", base_url="http://127.0.0.1:9/v1"), Kind.OLLAMA),
            (ProviderSpec(id="x", base_url="http://localhost:1234/v1"), Kind.LMSTUDIO),
            (ProviderSpec(id="x", base_url="http://localhost:8080/v1"), Kind.LLAMACPP),
            (ProviderSpec(id="x", base_url="http://h/v1", npm="@ai-sdk/google"), Kind.GEMINI),
            (ProviderSpec(id="ollama", base_url="http://h/v1", kind=Kind.OPENAI), Kind.OPENAI),
        ]:
            assert await detect_kind(spec, client, FetchCache()) is kind


async def test_detection_of_a_hung_server_is_a_timeout(fake_provider: Factory) -> None:
    fake = fake_provider("openai")
    fake.fault = "hang"
    cache = FetchCache()
    with pytest.raises(FetchTimeout):
        await fetch(ProviderSpec(id="gw", base_url=fake.base_url), cache)
    assert cache.kinds == {}  # nothing learnt from silence


async def test_suspicious_ids_dropped_with_reason(fake_provider: Factory) -> None:
    bad = ["x-{file:/etc/hostname}", "{env:HOME}", "a\x07b", "", "x" * 257]
    fake = fake_provider("openai", [{"id": i} for i in bad] + [{"id": "ok-model"}, {"id": "ok-model"}])
    result = await fetch(spec_of(fake, Kind.OPENAI))
    assert [m.id for m in result.models] == ["ok-model"]  # de-duplicated too
    assert len(result.suspicious) == len(bad)
    assert all(s.reason.startswith("suspicious") for s in result.suspicious)


def test_cache_from_bad_json_is_empty() -> None:
    for junk in (None, [], "x", {"kinds": {"u": "martian"}, "shows": {"d": 3}}):
        cache = FetchCache.from_json(junk)
        assert cache.kinds == {} and cache.shows == {}


def test_default_models_cover_every_kind() -> None:
    for kind in Kind:
        assert default_models(str(kind))


async def test_options_headers_sent_with_the_key(fake_provider: Factory) -> None:
    fake = fake_provider("openai", api_key="k-123")
    spec = spec_of(fake, Kind.OPENAI, api_key=Secret("k-123"),
                   headers={"X-Team": Secret("blue")})
    await fetch(spec)
    (request,) = fake.requests
    assert request.headers["x-team"] == "blue"
    assert request.headers["authorization"] == "Bearer k-123"


def test_ollama_num_ctx_too_long_for_int_is_unknown() -> None:
    from syncd.providers.kinds.ollama import reduce_show

    show = reduce_show({"parameters": "num_ctx " + "9" * 5000, "capabilities": ["completion"]})
    assert show["num_ctx"] is None and show["capabilities"] == ["completion"]
