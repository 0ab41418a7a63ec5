"""OpenAI-compatible servers (`GET {baseURL}/models`) with LiteLLM, OpenRouter, vLLM and Together extras."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from syncd.errors import FetchError
from syncd.model import Kind, ModelKind, ProviderSpec, RemoteModel
from syncd.providers.discover import Context, bearer_headers
from syncd.providers.fetch import check_count, unwrap_list
from syncd.providers.normalize import as_bool, as_int, as_str, dig, in_list, merge, modalities, per_million

_LITELLM_MARKS = ("max_input_tokens", "max_output_tokens", "mode")
_MODES = {"chat": ModelKind.CHAT, "completion": ModelKind.CHAT, "responses": ModelKind.CHAT,
          "language": ModelKind.CHAT, "code": ModelKind.CHAT,
          "embedding": ModelKind.EMBEDDING, "embeddings": ModelKind.EMBEDDING}


def model_kind(value: object) -> ModelKind | None:
    """LiteLLM `mode` / Together `type` / LM Studio `type` → a kind; unknown strings are `other`."""
    if not isinstance(value, str) or not value:
        return None
    return _MODES.get(value.lower(), ModelKind.OTHER)


def from_item(item: Mapping[str, Any]) -> RemoteModel:
    """One `/models` item, reading every extra a known gateway adds."""
    raw_id = item.get("id")
    model_id = raw_id if isinstance(raw_id, str) else ""
    params = item.get("supported_parameters")
    inputs = dig(item, "architecture", "input_modalities")
    pricing = item.get("pricing") if isinstance(item.get("pricing"), Mapping) else None
    return RemoteModel(
        id=model_id,
        name=as_str(item.get("name")) or as_str(item.get("display_name")),
        context=as_int(item.get("context_length")) or as_int(item.get("max_model_len"))
        or as_int(item.get("max_input_tokens")),
        output=as_int(dig(item, "top_provider", "max_completion_tokens"))
        or as_int(item.get("max_output_tokens")),
        tool_call=in_list(params, "tools"),
        reasoning=in_list(params, "reasoning", "include_reasoning"),
        vision=in_list(inputs, "image"),
        input_modalities=modalities(inputs),
        output_modalities=modalities(dig(item, "architecture", "output_modalities")),
        kind=model_kind(item.get("mode")) or model_kind(item.get("type")),
        cost_in=per_million(pricing.get("prompt")) if pricing else None,
        cost_out=per_million(pricing.get("completion")) if pricing else None,
    )


def from_litellm_info(entry: Mapping[str, Any]) -> RemoteModel | None:
    """One LiteLLM `/model/info` entry (keyed by `model_name`, the ID `/v1/models` serves)."""
    name = entry.get("model_name")
    info = entry.get("model_info")
    if not isinstance(name, str) or not isinstance(info, Mapping):
        return None
    return RemoteModel(
        id=name,
        context=as_int(info.get("max_input_tokens")),
        output=as_int(info.get("max_output_tokens")) or as_int(info.get("max_tokens")),
        tool_call=as_bool(info.get("supports_function_calling")),
        vision=as_bool(info.get("supports_vision")),
        reasoning=as_bool(info.get("supports_reasoning")),
        kind=model_kind(info.get("mode")),
        cost_in=per_million(info.get("input_cost_per_token")),
        cost_out=per_million(info.get("output_cost_per_token")),
    )


def items_of(payload: object, where: str) -> list[Mapping[str, Any]]:
    """The envelope's items; anything that is not an object becomes an ID-less (refused) item."""
    return [i if isinstance(i, Mapping) else {} for i in unwrap_list(payload, where)]


async def litellm_details(ctx: Context) -> dict[str, RemoteModel]:
    """LiteLLM's `/model/info`, merged per model name; empty when the server will not say."""
    try:
        payload = await ctx.get(ctx.root + "/model/info")
        entries = unwrap_list(payload, "/model/info", keys=("data",))
    except FetchError:  # a virtual key may not see /model/info: the plain list still stands
        return {}
    details: dict[str, RemoteModel] = {}
    for entry in entries:
        model = from_litellm_info(entry) if isinstance(entry, Mapping) else None
        if model is not None:
            details[model.id] = merge(details[model.id], model) if model.id in details else model
    return details


async def list_items(ctx: Context) -> list[Mapping[str, Any]]:
    """The items of `{baseURL}/models`, counted against the model limit (llama.cpp serves it too)."""
    url = ctx.base + "/models"
    items = items_of(await ctx.get(url), url)
    check_count(len(items), ctx.limits, url)
    return items


class OpenAIProvider:
    kind = Kind.OPENAI

    def auth_headers(self, spec: ProviderSpec) -> dict[str, str]:
        return bearer_headers(spec)

    async def list_models(self, ctx: Context) -> list[RemoteModel]:
        items = await list_items(ctx)
        models = [from_item(i) for i in items]
        looks_litellm = "litellm" in ctx.spec.id.lower() or any(
            k in i for i in items for k in _LITELLM_MARKS)
        if looks_litellm and models:
            details = await litellm_details(ctx)
            models = [merge(m, details[m.id]) if m.id in details else m for m in models]
        return models


PROVIDER = OpenAIProvider()
