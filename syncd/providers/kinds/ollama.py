"""Ollama: `/api/tags`, `/api/show` per model (cached per server and digest), `/api/ps` for runners."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Any

from syncd.errors import FetchError
from syncd.model import Kind, ModelKind, ProviderSpec, RemoteModel
from syncd.providers.discover import Context, bearer_headers
from syncd.providers.fetch import check_count, unwrap_list
from syncd.providers.normalize import as_int, as_str, dig, inputs_from

_NUM_CTX = re.compile(r"^\s*num_ctx\s+(\d+)\s*$", re.MULTILINE)


def reduce_show(show: object) -> dict[str, Any]:
    """The few `/api/show` facts syncd uses (keeps the cache small): capabilities and both contexts."""
    if not isinstance(show, Mapping):
        return {}
    info = show.get("model_info")
    arch_ctx = None
    if isinstance(info, Mapping):
        arch = info.get("general.architecture")
        arch_ctx = as_int(info.get(f"{arch}.context_length")) if isinstance(arch, str) else None
        if arch_ctx is None:  # no architecture named: any single "*.context_length" will do
            found = [as_int(v) for k, v in info.items() if str(k).endswith(".context_length")]
            arch_ctx = found[0] if len(found) == 1 else None
    params = show.get("parameters")
    match = _NUM_CTX.search(params) if isinstance(params, str) else None
    caps = show.get("capabilities")
    return {
        "capabilities": [c for c in caps if isinstance(c, str)] if isinstance(caps, list) else None,
        "context_length": arch_ctx,
        "num_ctx": as_int(match.group(1)) if match else None,
    }


def _kind(caps: list[Any]) -> ModelKind | None:
    """`completion` makes a chat model; without it, `embedding` and `image` (generation) do not."""
    if "completion" in caps:
        return ModelKind.CHAT
    if "embedding" in caps:
        return ModelKind.EMBEDDING
    if "image" in caps:
        return ModelKind.OTHER
    return None


def from_entry(entry: Mapping[str, Any], show: Mapping[str, Any],
               running: Mapping[str, int] | None = None) -> RemoteModel:
    """A tags entry, its reduced show and the loaded runners' contexts (DESIGN §4.2 table).

    A present capability list is complete: Ollama refuses tools to a model without "tools".
    A cloud model (`remote_host`) is served with its maximum context (Ollama's docs say so).
    """
    model_id = as_str(entry.get("model")) or as_str(entry.get("name")) or ""
    caps = entry.get("capabilities")
    if not isinstance(caps, list):
        caps = show.get("capabilities")
    maximum = as_int(dig(entry, "details", "context_length")) or as_int(show.get("context_length"))
    cloud = bool(as_str(entry.get("remote_host")))
    served = as_int(show.get("num_ctx")) or (maximum if cloud else None)
    kind = tools = thinking = inputs = None
    if isinstance(caps, list):
        tools, thinking = "tools" in caps, "thinking" in caps
        inputs = inputs_from(image="vision" in caps, audio="audio" in caps)
        kind = _kind(caps)
    return RemoteModel(
        id=model_id, context=served, context_served=True if served else None, max_context=maximum,
        live_context=(running or {}).get(model_id), tool_call=tools, reasoning=thinking,
        vision=None if inputs is None else "image" in inputs, input_modalities=inputs,
        kind=kind, digest=as_str(entry.get("digest")),
    )


class OllamaProvider:
    kind = Kind.OLLAMA

    def auth_headers(self, spec: ProviderSpec) -> dict[str, str]:
        return bearer_headers(spec)

    async def list_models(self, ctx: Context) -> list[RemoteModel]:
        url = ctx.root + "/api/tags"
        entries = list(unwrap_list(await ctx.get(url), url, keys=("models",)))
        check_count(len(entries), ctx.limits, url)
        entries = [e if isinstance(e, Mapping) else {} for e in entries]
        ctx.cache.keep_shows(ctx.root, {d for e in entries if (d := as_str(e.get("digest")))})
        gate = asyncio.Semaphore(max(1, ctx.limits.enrich_concurrency))
        running, *shows = await asyncio.gather(
            self._running(ctx), *(self._show(ctx, e, gate) for e in entries))
        return [from_entry(e, s, running) for e, s in zip(entries, shows, strict=True)]

    async def _running(self, ctx: Context) -> dict[str, int]:
        """`/api/ps`: the context each loaded runner serves right now (an older Ollama omits it)."""
        try:
            payload = await ctx.get(ctx.root + "/api/ps")
            items = unwrap_list(payload, "/api/ps", keys=("models",))
        except FetchError:  # no runner information costs the live context only
            return {}
        out: dict[str, int] = {}
        for item in items:
            if isinstance(item, Mapping):
                name = as_str(item.get("model")) or as_str(item.get("name"))
                length = as_int(item.get("context_length"))
                if name and length:
                    out[name] = length
        return out

    async def _show(self, ctx: Context, entry: Mapping[str, Any],
                    gate: asyncio.Semaphore) -> Mapping[str, Any]:
        name = as_str(entry.get("model")) or as_str(entry.get("name"))
        digest = as_str(entry.get("digest"))
        if name is None:
            return {}
        # a cloud model's details come from ollama.com (401 signed out, 403 with OLLAMA_NO_CLOUD);
        # when /api/tags already says everything (0.30+), there is nothing to ask
        if as_str(entry.get("remote_host")) and isinstance(entry.get("capabilities"), list):
            return {}
        cached = ctx.cache.show(ctx.root, digest) if digest else None
        if cached is not None:
            return cached
        async with gate:
            try:
                show = reduce_show(await ctx.get(ctx.root + "/api/show", method="POST",
                                                 body={"model": name}))
            except FetchError:  # one model's details missing leaves its fields unknown, not an error
                return {}
        if digest and dig(show, "capabilities") is not None:
            ctx.cache.remember_show(ctx.root, digest, show)
        return show


PROVIDER = OllamaProvider()
