"""LM Studio: the native `/api/v1/models`, falling back to `/api/v0/models`, then `{baseURL}/models`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from syncd.errors import BadResponse, FetchError
from syncd.model import Kind, ModelKind, ProviderSpec, RemoteModel
from syncd.providers.discover import Context, bearer_headers
from syncd.providers.fetch import check_count, unwrap_list
from syncd.providers.kinds.openai import from_item
from syncd.providers.normalize import as_bool, as_int, as_str, in_list

_TYPES = {"llm": ModelKind.CHAT, "vlm": ModelKind.CHAT, "embedding": ModelKind.EMBEDDING,
          "embeddings": ModelKind.EMBEDDING}


def _kind(value: object) -> ModelKind | None:
    return _TYPES.get(value, ModelKind.OTHER) if isinstance(value, str) and value else None


def _loaded_context(item: Mapping[str, Any]) -> int | None:
    instances = item.get("loaded_instances")
    if isinstance(instances, list):
        for inst in instances:
            if isinstance(inst, Mapping):
                config = inst.get("config")
                ctx = as_int(config.get("context_length")) if isinstance(config, Mapping) else None
                if ctx:
                    return ctx
    return None


def from_v1(item: Mapping[str, Any]) -> RemoteModel:
    """An `/api/v1/models` item (LM Studio 0.4+): `key`, `display_name`, `capabilities{}`."""
    caps = item.get("capabilities")
    caps = caps if isinstance(caps, Mapping) else {}
    vision = as_bool(caps.get("vision"))
    if item.get("type") == "vlm":
        vision = True
    return RemoteModel(
        id=as_str(item.get("key")) or as_str(item.get("id")) or "",
        name=as_str(item.get("display_name")),
        context=_loaded_context(item) or as_int(item.get("max_context_length")),
        tool_call=as_bool(caps.get("trained_for_tool_use")),
        vision=vision,
        reasoning=as_bool(caps.get("reasoning")),
        kind=_kind(item.get("type")),
    )


def from_v0(item: Mapping[str, Any]) -> RemoteModel:
    """An `/api/v0/models` item: `type` llm|vlm|embeddings, `capabilities` as a list."""
    caps = item.get("capabilities")
    kind = _kind(item.get("type"))
    return RemoteModel(
        id=as_str(item.get("id")) or "",
        context=as_int(item.get("loaded_context_length")) or as_int(item.get("max_context_length")),
        tool_call=in_list(caps, "tool_use"),
        vision=True if item.get("type") == "vlm" else None,
        kind=kind,
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
