"""llama.cpp's llama-server: `{baseURL}/models`, in single-model mode plus `/props`, or in router mode."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any

from syncd.errors import FetchError
from syncd.model import Kind, ProviderSpec, RemoteModel
from syncd.providers.discover import Context, bearer_headers
from syncd.providers.kinds.openai import list_items
from syncd.providers.normalize import as_bool, as_int, as_str, dig, hint, inputs_from, modalities

_CTX_FLAGS = ("-c", "--ctx-size")
_CTX_INI = re.compile(r"^\s*(?:c|ctx-size|LLAMA_ARG_CTX_SIZE)\s*=\s*(\d+)\s*$", re.MULTILINE)


def ctx_from_args(args: object, preset: object = None) -> int | None:
    """The `-c/--ctx-size` a router starts a model with (its command line, or its preset's INI);
    0 means "the model's own", which is no fixed number."""
    if isinstance(args, list):
        words = [a for a in args if isinstance(a, str)]
        for i, word in enumerate(words):
            if word in _CTX_FLAGS and i + 1 < len(words):
                return as_int(words[i + 1])
            for flag in _CTX_FLAGS:
                if word.startswith(flag + "="):
                    return as_int(word.split("=", 1)[1])
    if isinstance(preset, str):
        match = _CTX_INI.search(preset)
        if match:
            return as_int(match.group(1))
    return None


def from_single(item: Mapping[str, Any]) -> RemoteModel:
    """The one model of a single-model server: `meta.n_ctx` is what it serves, fixed at start."""
    served = as_int(dig(item, "meta", "n_ctx"))
    return RemoteModel(
        id=as_str(item.get("id")) or "",
        context=served, context_served=True if served else None,
        max_context=as_int(dig(item, "meta", "n_ctx_train")),
    )


def from_router(item: Mapping[str, Any]) -> RemoteModel:
    """A router entry: the context its command line fixes, else what a loaded instance serves
    (`meta.n_ctx`, present only while loaded) with the training length as the maximum."""
    status = item.get("status")
    status = status if isinstance(status, Mapping) else {}
    fixed = ctx_from_args(status.get("args"), status.get("preset"))
    loaded = status.get("value") == "loaded"
    inputs = modalities(dig(item, "architecture", "input_modalities"))
    return RemoteModel(
        id=as_str(item.get("id")) or "",
        context=fixed, context_served=True if fixed else None,
        live_context=as_int(dig(item, "meta", "n_ctx")) if loaded else None,
        max_context=as_int(dig(item, "meta", "n_ctx_train")),
        vision=None if inputs is None else "image" in inputs, input_modalities=inputs,
    )


def apply_props(model: RemoteModel, props: Mapping[str, Any]) -> RemoteModel:
    """`/props` of a single-model server: its slot context (older builds lack `meta.n_ctx`), its
    input modalities, and its chat template's tool support, a hint only: llama-server accepts
    tools for every model."""
    n_ctx = as_int(dig(props, "default_generation_settings", "n_ctx"))
    vision = as_bool(dig(props, "modalities", "vision"))
    audio = as_bool(dig(props, "modalities", "audio"))
    inputs = inputs_from(image=vision, audio=audio)
    return dataclasses.replace(
        model,
        context=model.context or n_ctx,
        context_served=True if (model.context or n_ctx) else model.context_served,
        tool_call=hint(as_bool(dig(props, "chat_template_caps", "supports_tools"))),
        vision=vision if vision is not None else model.vision,
        input_modalities=inputs if inputs is not None else model.input_modalities,
    )


def is_router(items: Sequence[Mapping[str, Any]]) -> bool:
    return any(isinstance(i.get("status"), Mapping) for i in items)


class LlamaCppProvider:
    kind = Kind.LLAMACPP

    def auth_headers(self, spec: ProviderSpec) -> dict[str, str]:
        return bearer_headers(spec)

    async def list_models(self, ctx: Context) -> list[RemoteModel]:
        items = await list_items(ctx)
        if is_router(items):  # never ask a router's /props?model=: that loads the model
            return [from_router(i) for i in items]
        models = [from_single(i) for i in items]
        if len(models) != 1:
            return models
        try:
            props = await ctx.get(ctx.root + "/props")
        except FetchError:  # a server without /props (or not llama.cpp at all) still lists models
            return models
        return [apply_props(models[0], props)] if isinstance(props, Mapping) else models


PROVIDER = LlamaCppProvider()
