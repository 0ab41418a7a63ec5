"""OpenAI-compatible servers (`GET {baseURL}/models`), reading what each known gateway adds (DESIGN §4.2)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from syncd.errors import FetchError
from syncd.model import Kind, ModelKind, ProviderSpec, RemoteModel
from syncd.providers import litellm
from syncd.providers.discover import Context, bearer_headers
from syncd.providers.fetch import check_count, unwrap_list
from syncd.providers.normalize import (
    as_bool,
    as_int,
    as_str,
    dig,
    in_list,
    inputs_from,
    kind_from_id,
    kind_of,
    merge,
    modalities,
    per_million,
    price,
)

# The limit fields of each gateway, in the order they are tried.
_CONTEXT_KEYS = ("context_length", "max_model_len", "max_input_tokens", "context_window",
                 "max_context_length")
_OUTPUT_KEYS = ("max_output_tokens", "max_completion_tokens")


def _first_int(item: Mapping[str, Any], keys: Sequence[str]) -> int | None:
    for key in keys:
        value = as_int(item.get(key))
        if value is not None:
            return value
    return None


def _costs(pricing: object) -> dict[str, Any]:
    """OpenRouter `pricing` (USD per token, strings) or Together `pricing` (USD per million, numbers)."""
    if not isinstance(pricing, Mapping):
        return {}
    if "prompt" in pricing or "completion" in pricing:
        return {"cost_in": per_million(pricing.get("prompt")),
                "cost_out": per_million(pricing.get("completion")),
                "cache_read": per_million(pricing.get("input_cache_read")),
                "cache_write": per_million(pricing.get("input_cache_write"))}
    return {"cost_in": price(pricing.get("input")), "cost_out": price(pricing.get("output"))}


def _mistral(caps: Mapping[str, Any], model_id: str) -> dict[str, Any]:
    """Mistral's `capabilities{}`: `completion_chat: false` (embed, OCR, moderation) is not chat."""
    chat = as_bool(caps.get("completion_chat"))
    kind = None if chat is None else ModelKind.CHAT if chat else kind_from_id(model_id) or ModelKind.OTHER
    inputs = inputs_from(image=as_bool(caps.get("vision")), audio=as_bool(caps.get("audio")))
    return {"kind": kind, "tool_call": as_bool(caps.get("function_calling")),
            "reasoning": as_bool(caps.get("reasoning")), "input_modalities": inputs}


def from_item(item: Mapping[str, Any]) -> RemoteModel:
    """One `/models` item, reading every extra a known gateway adds (OpenRouter, Together, Groq,
    Mistral, vLLM, LiteLLM); anything it does not say stays unknown."""
    raw_id = item.get("id")
    model_id = raw_id if isinstance(raw_id, str) else ""
    params = item.get("supported_parameters")
    inputs = modalities(dig(item, "architecture", "input_modalities"))
    fields: dict[str, Any] = {
        "tool_call": in_list(params, "tools"),
        "reasoning": in_list(params, "reasoning", "include_reasoning"),
        "input_modalities": inputs,
        "kind": kind_of(item.get("mode")) or kind_of(item.get("type")),
    }
    caps = item.get("capabilities")
    if isinstance(caps, Mapping):
        fields.update({k: v for k, v in _mistral(caps, model_id).items() if v is not None})
    deprecated = item.get("expiration_date") or item.get("deprecation")
    return RemoteModel(
        id=model_id,
        name=as_str(item.get("name")) or as_str(item.get("display_name")),
        context=_first_int(item, _CONTEXT_KEYS),
        output=as_int(dig(item, "top_provider", "max_completion_tokens")) or _first_int(item, _OUTPUT_KEYS),
        vision=None if fields["input_modalities"] is None else "image" in fields["input_modalities"],
        output_modalities=modalities(dig(item, "architecture", "output_modalities")),
        status="deprecated" if isinstance(deprecated, str) and deprecated else None,
        **fields,
        **_costs(item.get("pricing")),
    )


def inherit_parents(items: Sequence[Mapping[str, Any]], models: list[RemoteModel]) -> list[RemoteModel]:
    """vLLM lists a LoRA adapter with `parent` and `max_model_len: null`: it serves its parent's length."""
    by_id = {m.id: m for m in models}
    out = []
    for item, model in zip(items, models, strict=True):
        parent = by_id.get(as_str(item.get("parent")) or "")
        if parent is not None and model.context is None and parent.context is not None:
            model = dataclasses.replace(model, context=parent.context)
        out.append(model)
    return out


def items_of(payload: object, where: str) -> list[Mapping[str, Any]]:
    """The envelope's items; anything that is not an object becomes an ID-less (refused) item."""
    return [i if isinstance(i, Mapping) else {} for i in unwrap_list(payload, where)]


async def list_items(ctx: Context) -> list[Mapping[str, Any]]:
    """The items of `{baseURL}/models`, counted against the model limit (llama.cpp serves it too)."""
    url = ctx.base + "/models"
    items = items_of(await ctx.get(url), url)
    check_count(len(items), ctx.limits, url)
    return items


async def litellm_details(ctx: Context) -> dict[str, RemoteModel]:
    """LiteLLM's `/model/info`, one model per `model_name`; empty when the server will not say."""
    try:
        payload = await ctx.get(ctx.root + "/model/info")
        entries = unwrap_list(payload, "/model/info", keys=("data",))
    except FetchError:  # a virtual key may not see /model/info: the plain list still stands
        return {}
    return litellm.by_model_name(entries)


class OpenAIProvider:
    kind = Kind.OPENAI

    def auth_headers(self, spec: ProviderSpec) -> dict[str, str]:
        return bearer_headers(spec)

    async def list_models(self, ctx: Context) -> list[RemoteModel]:
        items = await list_items(ctx)
        models = ctx.cache.models_of(ctx.base + "/models", items,
                                     lambda items: inherit_parents(items, [from_item(i) for i in items]))
        if models and litellm.looks_like(ctx.spec.id, items):
            details = await litellm_details(ctx)
            # /model/info sees every deployment; /v1/models shows only the first one's limits
            models = [merge(details[m.id], m) if m.id in details else m for m in models]
        return models


PROVIDER = OpenAIProvider()
