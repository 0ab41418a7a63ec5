"""llama.cpp's llama-server: `{baseURL}/models` (`meta.n_ctx_train`) plus `/props` for the running context."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from syncd.errors import AuthFailed, FetchError
from syncd.model import Kind, ProviderSpec, RemoteModel
from syncd.providers.discover import Context, bearer_headers
from syncd.providers.kinds.openai import from_item, list_items
from syncd.providers.normalize import as_bool, as_int, dig


def from_model(item: Mapping[str, Any]) -> RemoteModel:
    model = from_item(item)
    trained = as_int(dig(item, "meta", "n_ctx_train"))
    return dataclasses.replace(model, context=model.context or trained)


def apply_props(model: RemoteModel, props: Mapping[str, Any]) -> RemoteModel:
    """The server's effective context and template capabilities beat what the weights were trained for."""
    n_ctx = as_int(dig(props, "default_generation_settings", "n_ctx")) or as_int(props.get("n_ctx"))
    tools = as_bool(dig(props, "chat_template_caps", "supports_tools"))
    vision = as_bool(dig(props, "modalities", "vision"))
    return dataclasses.replace(
        model,
        context=n_ctx or model.context,
        tool_call=tools if tools is not None else model.tool_call,
        vision=vision if vision is not None else model.vision,
        input_modalities=(("text", "image") if vision else ("text",)) if vision is not None
        else model.input_modalities,
    )


class LlamaCppProvider:
    kind = Kind.LLAMACPP

    def auth_headers(self, spec: ProviderSpec) -> dict[str, str]:
        return bearer_headers(spec)

    async def list_models(self, ctx: Context) -> list[RemoteModel]:
        models = [from_model(i) for i in await list_items(ctx)]
        if len(models) != 1:  # /props describes the one loaded model; a router serves many
            return models
        try:
            props = await ctx.get(ctx.root + "/props")
        except AuthFailed:
            raise
        except FetchError:  # a server without /props (or not llama.cpp at all) still lists models
            return models
        return [apply_props(models[0], props)] if isinstance(props, Mapping) else models


PROVIDER = LlamaCppProvider()
