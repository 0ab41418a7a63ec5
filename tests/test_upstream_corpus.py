"""Every server of the upstream corpus, served byte for byte on 127.0.0.1: what syncd reads from each.

The expected values below are read off the fixture files (tests/fixtures/upstream), whose provenance
says where each body comes from.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import upstream
from fakes import FakeProvider

from syncd.model import FetchResult, Kind, Limits, ModelKind, ProviderSpec, RemoteModel, Secret
from syncd.providers.catalog import Catalog
from syncd.providers.discover import FetchCache, fetch_models, make_client

LIMITS = Limits(connect=1, read=2, total=6)
Factory = Callable[..., FakeProvider]


async def fetch(fake: FakeProvider, kind: Kind | None, cache: FetchCache | None = None,
                catalog: Catalog | None = None, **kw: Any) -> FetchResult:
    spec = ProviderSpec(id=kw.pop("pid", "p"), base_url=fake.base_url, kind=kind, **kw)
    async with make_client(LIMITS) as client:
        return await fetch_models(spec, client, limits=LIMITS, cache=cache, catalog=catalog)


def by_id(result: FetchResult) -> dict[str, RemoteModel]:
    return {m.id: m for m in result.models}


def test_every_fixture_names_its_sources() -> None:
    names = upstream.names()
    assert len(names) >= 20
    for name in names:
        prov = upstream.fixture(name)["provenance"]
        assert prov["server"] and prov["versions"] and prov["sources"], name
        for source in prov["sources"]:
            assert source.get("what"), name
            assert source.get("commit") or source.get("url") or source.get("package"), name


# --- Ollama --------------------------------------------------------------------------------------


async def test_ollama_before_030_reads_num_ctx_and_flags_the_maximum(fake_provider: Factory) -> None:
    fake = fake_provider("ollama", corpus="ollama/0.12-tags-and-show")
    models = by_id(await fetch(fake, Kind.OLLAMA))
    deepseek, llama = models["deepseek-r1:latest"], models["llama3.2:latest"]
    assert (deepseek.context, deepseek.context_served, deepseek.max_context) == (2048, True, 131072)
    assert (llama.context, llama.context_served) == (8192, False)  # no num_ctx: the maximum
    assert llama.tool_call is False and llama.vision is True and llama.kind is ModelKind.CHAT


async def test_ollama_030_tags_with_capabilities_still_reads_the_modelfile(fake_provider: Factory) -> None:
    fake = fake_provider("ollama", corpus="ollama/0.30-tags-with-capabilities")
    models = by_id(await fetch(fake, Kind.OLLAMA))
    gemma = models["gemma4"]
    assert (gemma.context, gemma.context_served, gemma.max_context) == (2048, True, 131072)
    assert gemma.vision is True and gemma.tool_call is False


async def test_ollama_cloud_model_is_served_at_its_maximum_without_asking_show(
        fake_provider: Factory) -> None:
    fake = fake_provider("ollama", corpus="ollama/0.30-tags-with-capabilities")
    cloud = by_id(await fetch(fake, Kind.OLLAMA))["gpt-oss:20b-cloud"]
    assert (cloud.context, cloud.context_served) == (131072, True)
    assert cloud.tool_call is True and cloud.reasoning is True
    shown = [r.body for r in fake.requests if r.path == "/api/show"]
    assert shown and not any(b"cloud" in body for body in shown)


async def test_ollama_image_generation_model_is_not_chat(fake_provider: Factory) -> None:
    fake = fake_provider("ollama", corpus="ollama/0.30-tags-with-capabilities")
    assert by_id(await fetch(fake, Kind.OLLAMA))["x/z-image-turbo:latest"].kind is ModelKind.OTHER


@pytest.mark.parametrize("scenario", ["ollama/0.12-cloud-signed-out", "ollama/0.12-cloud-no-cloud"])
async def test_a_cloud_model_whose_show_is_refused_costs_only_its_own_metadata(
        fake_provider: Factory, scenario: str) -> None:
    fake = fake_provider("ollama", corpus=scenario)
    models = by_id(await fetch(fake, Kind.OLLAMA))
    assert set(models) == {"deepseek-r1:latest", "llama3.2:latest", "gpt-oss:20b-cloud"}
    cloud = models["gpt-oss:20b-cloud"]
    assert cloud.context is None and cloud.tool_call is None
    assert models["deepseek-r1:latest"].context == 2048


# --- LM Studio -----------------------------------------------------------------------------------


async def test_lmstudio_04_loaded_context_reasoning_object_and_tool_hint(fake_provider: Factory) -> None:
    fake = fake_provider("lmstudio", corpus="lmstudio/0.4-v1-loaded")
    models = by_id(await fetch(fake, Kind.LMSTUDIO))
    gemma, r1 = models["google/gemma-4-26b-a4b"], models["deepseek-r1"]
    assert (gemma.context, gemma.context_served) == (4096, True)
    assert gemma.reasoning is True and gemma.vision is True and gemma.tool_call is True
    assert (r1.context, r1.context_served) == (131072, False)  # not loaded: its maximum
    assert r1.reasoning is True  # allowed_options ["on"]
    assert models["text-embedding-nomic-embed-text-v1.5-embedding"].kind is ModelKind.EMBEDDING


async def test_lmstudio_unloading_a_model_keeps_the_context_it_served(fake_provider: Factory) -> None:
    fake = fake_provider("lmstudio", corpus="lmstudio/0.4-v1-loaded")
    cache = FetchCache()
    loaded = by_id(await fetch(fake, Kind.LMSTUDIO, cache))["google/gemma-4-26b-a4b"]
    fake.serve("lmstudio/0.4-v1-unloaded")
    unloaded = by_id(await fetch(fake, Kind.LMSTUDIO, FetchCache.from_json(cache.to_json())))
    assert unloaded["google/gemma-4-26b-a4b"].context == loaded.context == 4096


async def test_lmstudio_03_falls_back_to_v0(fake_provider: Factory) -> None:
    fake = fake_provider("lmstudio", corpus="lmstudio/0.3-v0")
    models = by_id(await fetch(fake, Kind.LMSTUDIO))
    assert models["qwen2-vl-7b-instruct"].vision is True
    assert models["meta-llama-3.1-8b-instruct"].context == 131072
    assert models["text-embedding-nomic-embed-text-v1.5"].kind is ModelKind.EMBEDDING


# --- llama.cpp -----------------------------------------------------------------------------------


async def test_llamacpp_single_serves_n_ctx_not_the_training_length(fake_provider: Factory) -> None:
    fake = fake_provider("llamacpp", corpus="llamacpp/single")
    (model,) = (await fetch(fake, Kind.LLAMACPP)).models
    assert (model.context, model.context_served, model.max_context) == (4096, True, 32768)
    assert model.tool_call is True


@pytest.mark.parametrize("scenario", ["llamacpp/router-ctx-unloaded", "llamacpp/router-ctx-loaded"])
async def test_llamacpp_router_context_comes_from_its_command_line(fake_provider: Factory,
                                                                     scenario: str) -> None:
    fake = fake_provider("llamacpp", corpus=scenario)
    models = by_id(await fetch(fake, Kind.LLAMACPP))
    assert {m.id: m.context for m in models.values()} == {"tiny-a": 4096, "tiny-b": 4096}
    assert "/props" not in fake.paths()  # /props?model= would load the model


async def test_llamacpp_router_keeps_a_loaded_models_context_after_unload(fake_provider: Factory) -> None:
    fake = fake_provider("llamacpp", corpus="llamacpp/router-unloaded")
    cache = FetchCache()
    assert by_id(await fetch(fake, Kind.LLAMACPP, cache))["tiny-a"].context is None
    fake.serve("llamacpp/router-loaded")
    assert by_id(await fetch(fake, Kind.LLAMACPP, cache))["tiny-a"].context == 32768
    fake.serve("llamacpp/router-unloaded")
    assert by_id(await fetch(fake, Kind.LLAMACPP, cache))["tiny-a"].context == 32768


# --- OpenAI-compatible servers and gateways ------------------------------------------------------


async def test_vllm_lora_adapter_serves_its_parents_length(fake_provider: Factory) -> None:
    fake = fake_provider("openai", corpus="vllm/lora")
    models = by_id(await fetch(fake, Kind.OPENAI))
    assert models["sql-lora"].context == models["meta-llama/Llama-2-7b-hf"].context == 4096


async def test_litellm_one_name_over_two_deployments_takes_the_smallest_limits(
        fake_provider: Factory) -> None:
    fake = fake_provider("openai", corpus="litellm/1.108.7-proxy")
    models = by_id(await fetch(fake, Kind.OPENAI))
    assert (models["coder"].context, models["coder"].output) == (32768, 4096)
    assert models["coder"].tool_call is True


async def test_litellm_pdf_input_cache_prices_and_kinds(fake_provider: Factory) -> None:
    fake = fake_provider("openai", corpus="litellm/1.108.7-proxy")
    models = by_id(await fetch(fake, Kind.OPENAI))
    claude = models["claude-sonnet"]
    assert claude.input_modalities == ("text", "image", "pdf") and claude.reasoning is True
    assert (claude.cost_in, claude.cost_out) == pytest.approx((3.0, 15.0))
    assert (claude.cache_read, claude.cache_write) == pytest.approx((0.3, 3.75))
    assert models["image-gen"].kind is ModelKind.OTHER
    assert models["embed-small"].kind is ModelKind.EMBEDDING


async def test_openrouter_cache_prices_modalities_and_deprecation(fake_provider: Factory) -> None:
    fake = fake_provider("openai", corpus="openrouter/models")
    models = by_id(await fetch(fake, Kind.OPENAI))
    gpt4, gpt4o = models["openai/gpt-4"], models["openai/gpt-4o"]
    assert (gpt4.context, gpt4.output, gpt4.tool_call) == (8192, 4096, False)
    assert (gpt4.cost_in, gpt4.cost_out) == pytest.approx((30.0, 60.0))
    assert gpt4o.input_modalities == ("text", "image", "pdf") and gpt4o.reasoning is True
    assert (gpt4o.cache_read, gpt4o.cache_write) == pytest.approx((0.5, 6.25))
    assert gpt4o.status == "deprecated" and gpt4.status is None


async def test_together_bare_list_with_prices_per_million_and_types(fake_provider: Factory) -> None:
    fake = fake_provider("openai", corpus="together/models")
    models = by_id(await fetch(fake, Kind.OPENAI))
    chat = models["Austism/chronos-hermes-13b"]
    assert (chat.context, chat.cost_in, chat.cost_out, chat.kind) == (2048, 0.3, 0.3, ModelKind.CHAT)
    assert models["togethercomputer/m2-bert-80M-8k-retrieval"].kind is ModelKind.EMBEDDING
    assert models["black-forest-labs/FLUX.1-schnell"].kind is ModelKind.OTHER


async def test_groq_context_window_and_max_completion_tokens(fake_provider: Factory) -> None:
    fake = fake_provider("openai", corpus="groq/models")
    models = by_id(await fetch(fake, Kind.OPENAI))
    assert models["llama-3.1-8b-instant"].context == 131072
    assert (models["llama3-8b-8192"].context, models["llama3-8b-8192"].output) == (8192, 8192)
    assert models["whisper-large-v3-turbo"].kind is ModelKind.OTHER


async def test_mistral_base_cards_are_chat_by_their_capabilities(fake_provider: Factory) -> None:
    fake = fake_provider("openai", corpus="mistral/models")
    models = by_id(await fetch(fake, Kind.OPENAI))
    medium = models["mistral-medium-2508"]
    assert medium.kind is ModelKind.CHAT and medium.context == 131072
    assert medium.tool_call is True and medium.vision is True
    assert models["magistral-medium-2509"].reasoning is True
    assert models["mistral-embed"].kind is ModelKind.EMBEDDING
    assert models["open-mistral-7b"].status == "deprecated"


async def test_openai_ids_name_their_non_chat_models(fake_provider: Factory) -> None:
    fake = fake_provider("openai", corpus="openai/models")
    kinds = {m.id: m.kind for m in (await fetch(fake, Kind.OPENAI)).models}
    assert {i for i, k in kinds.items() if k in (None, ModelKind.CHAT)} == {
        "gpt-4.1", "gpt-4o-mini", "o4-mini"}
    assert kinds["text-embedding-3-small"] is ModelKind.EMBEDDING


async def test_deepseek_lists_its_two_models(fake_provider: Factory) -> None:
    fake = fake_provider("openai", corpus="deepseek/models")
    assert [m.id for m in (await fetch(fake, Kind.OPENAI)).models] == ["deepseek-chat", "deepseek-reasoner"]


# --- Anthropic and Gemini ------------------------------------------------------------------------


async def test_anthropic_pages_and_reads_capabilities(fake_provider: Factory) -> None:
    fake = fake_provider("anthropic", corpus="anthropic/models-paged")
    result = await fetch(fake, None, npm="@ai-sdk/anthropic", api_key=Secret("k"))
    opus, haiku = by_id(result)["claude-opus-4-6"], by_id(result)["claude-haiku-4-5"]
    assert opus.context is None and opus.output is None  # the reference's 0 is no limit
    assert opus.input_modalities == ("text", "image", "pdf") and opus.reasoning is True
    assert (haiku.context, haiku.output) == (200000, 64000)
    assert haiku.input_modalities == ("text", "image")


async def test_gemini_pages_and_keeps_tts_and_image_models_out_of_chat(fake_provider: Factory) -> None:
    fake = fake_provider("gemini", corpus="gemini/models-paged")
    models = by_id(await fetch(fake, None, npm="@ai-sdk/google", api_key=Secret("k")))
    assert models["gemini-2.5-flash"].kind is ModelKind.CHAT and models["gemini-2.5-flash"].reasoning
    for other in ("gemini-2.5-flash-preview-tts", "gemini-2.5-flash-image", "imagen-4.0-generate-001"):
        assert models[other].kind is ModelKind.OTHER, other
    assert models["gemini-embedding-001"].kind is ModelKind.EMBEDDING


# --- providers that cannot list ------------------------------------------------------------------


async def test_an_anthropic_compatible_endpoint_without_a_list_is_unlisted_not_failed(
        fake_provider: Factory) -> None:
    fake = fake_provider("anthropic", corpus="anthropic-compatible/no-model-list")
    result = await fetch(fake, None, npm="@ai-sdk/anthropic", api_key=Secret("k"))
    assert result.models == () and result.unlisted is not None
    assert "does not list its models" in result.unlisted and "left as written" in result.unlisted


@pytest.mark.parametrize("spec", [
    ProviderSpec(id="work", base_url="https://myres.openai.azure.com/openai/v1"),
    ProviderSpec(id="work", base_url="https://gw.example/openai/v1?api-version=2024-10-21"),
    ProviderSpec(id="work", base_url="https://gw.example/v1", headers={"api-key": Secret("x")}),
    ProviderSpec(id="work", base_url="https://gw.example/v1", npm="@ai-sdk/azure"),
])
async def test_azure_openai_is_recognised_and_said_plainly_to_be_unlisted(spec: ProviderSpec) -> None:
    async with make_client(LIMITS) as client:  # no request leaves: nothing listens at these hosts
        result = await fetch_models(spec, client, limits=LIMITS)
    assert result.kind is Kind.AZURE and result.models == ()
    assert result.unlisted is not None and "deployment" in result.unlisted
