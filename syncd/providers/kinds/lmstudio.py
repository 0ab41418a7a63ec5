"""LM Studio: `/api/v1/models` (0.4+), falling back to `/api/v0/models` (0.3), then `{baseURL}/models`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from syncd.errors import BadResponse, FetchError
from syncd.model import Kind, ProviderSpec, RemoteModel
from syncd.providers.discover import Context, bearer_headers
from syncd.providers.fetch import check_count, unwrap_list
from syncd.providers.kinds.openai import from_item
from syncd.providers.normalize import as_bool, as_int, as_str, hint, in_list, inputs_from, kind_of


def _loaded_context(item: Mapping[str, Any]) -> int | None:
    """What a loaded instance serves right now; it comes and goes with JIT loading and TTL eviction."""
    instances = item.get("loaded_instances")
    if isinstance(instances, list):
        for inst in instances:
            if isinstance(inst, Mapping):
                config = inst.get("config")
                ctx = as_int(config.get("context_length")) if isinstance(config, Mapping) else None
                if ctx:
                    return ctx
    return None


def _reasoning(value: object) -> bool | None:
    """0.4's `capabilities.reasoning` is an object: `allowed_options` other than "off" mean it reasons."""
    if isinstance(value, Mapping):
        options = value.get("allowed_options")
        if isinstance(options, list):
            return any(isinstance(o, str) and o != "off" for o in options)
        return True
    return as_bool(value)


def from_v1(item: Mapping[str, Any]) -> RemoteModel:
    """An `/api/v1/models` item (LM Studio 0.4+): `key`, `display_name`, `capabilities{}`.

    `trained_for_tool_use` is a quality hint: LM Studio accepts tools for every model, so a false
    hint is left unknown (OpenCode then sends tools) rather than written as `tool_call: false`.
    """
    caps = item.get("capabilities")
    caps = caps if isinstance(caps, Mapping) else {}
    vision = as_bool(caps.get("vision"))
    if item.get("type") == "vlm":
        vision = True
    inputs = inputs_from(image=vision)
    return RemoteModel(
        id=as_str(item.get("key")) or as_str(item.get("id")) or "",
        name=as_str(item.get("display_name")),
        max_context=as_int(item.get("max_context_length")),
        live_context=_loaded_context(item),
        tool_call=hint(as_bool(caps.get("trained_for_tool_use"))),
        vision=vision, input_modalities=inputs,
        reasoning=_reasoning(caps.get("reasoning")),
        kind=kind_of(item.get("type")),
    )


def from_v0(item: Mapping[str, Any]) -> RemoteModel:
    """An `/api/v0/models` item (0.3): `type` llm|vlm|embeddings, `capabilities` as a list."""
    vision = True if item.get("type") == "vlm" else None
    return RemoteModel(
        id=as_str(item.get("id")) or "",
        max_context=as_int(item.get("max_context_length")),
        live_context=as_int(item.get("loaded_context_length")),
        tool_call=hint(in_list(item.get("capabilities"), "tool_use")),
        vision=vision, input_modalities=inputs_from(image=vision),
        kind=kind_of(item.get("type")),
    )


class LMStudioProvider:
    kind = Kind.LMSTUDIO

    def auth_headers(self, spec: ProviderSpec) -> dict[str, str]:
        return bearer_headers(spec)

    async def list_models(self, ctx: Context) -> list[RemoteModel]:
        attempts = (
            (ctx.root + "/api/v1/models", ("models",), from_v1),
            (ctx.root + "/api/v0/models", ("data",), from_v0),
            (ctx.base + "/models", ("data", "models"), from_item),
        )
        last: FetchError | None = None
        for url, keys, convert in attempts:
            try:
                payload = await ctx.get(url)
                items = [i if isinstance(i, Mapping) else {} for i in unwrap_list(payload, url, keys)]
            except BadResponse as exc:  # an older LM Studio lacks the newer API: try the next one
                last = exc
                continue
            check_count(len(items), ctx.limits, url)
            return [convert(i) for i in items]
        assert last is not None
        raise last


PROVIDER = LMStudioProvider()
