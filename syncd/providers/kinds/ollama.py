"""Ollama: `/api/tags`, then `/api/show` per model lacking capabilities (cached per server, by digest)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Any

from syncd.errors import AuthFailed, FetchError
from syncd.model import Kind, ModelKind, ProviderSpec, RemoteModel
from syncd.providers.discover import Context, bearer_headers
from syncd.providers.fetch import check_count, unwrap_list
from syncd.providers.normalize import as_int, as_str, dig

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


def from_entry(entry: Mapping[str, Any], show: Mapping[str, Any]) -> RemoteModel:
    """A tags entry plus its reduced show; a present capability list is complete (DESIGN §4.2)."""
    model_id = as_str(entry.get("model")) or as_str(entry.get("name")) or ""
    caps = entry.get("capabilities")
    if not isinstance(caps, list):
        caps = show.get("capabilities")
    context = as_int(show.get("num_ctx")) or as_int(show.get("context_length"))
    kind = None
    tools = vision = thinking = None
    if isinstance(caps, list):
        tools, vision, thinking = "tools" in caps, "vision" in caps, "thinking" in caps
        if "embedding" in caps and "completion" not in caps:
            kind = ModelKind.EMBEDDING
        elif "completion" in caps:
            kind = ModelKind.CHAT
    return RemoteModel(
        id=model_id, context=context, tool_call=tools, vision=vision, reasoning=thinking,
        kind=kind, digest=as_str(entry.get("digest")),
        input_modalities=(("text", "image") if vision else ("text",)) if vision is not None else None,
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
        gate = asyncio.Semaphore(max(1, ctx.limits.enrich_concurrency))
        shows = await asyncio.gather(*(self._show(ctx, e, gate) for e in entries))
        return [from_entry(e, s) for e, s in zip(entries, shows, strict=True)]

    async def _show(self, ctx: Context, entry: Mapping[str, Any],
                    gate: asyncio.Semaphore) -> Mapping[str, Any]:
        if isinstance(entry.get("capabilities"), list):
            return {}
        name = as_str(entry.get("model")) or as_str(entry.get("name"))
        digest = as_str(entry.get("digest"))
        if name is None:
            return {}
        cached = ctx.cache.show(ctx.root, digest) if digest else None
        if cached is not None:
            return cached
        async with gate:
            try:
                show = reduce_show(await ctx.get(ctx.root + "/api/show", method="POST",
                                                 body={"model": name}))
            except AuthFailed:
                raise
            except FetchError:  # one model's details missing leaves its fields unknown, not an error
                return {}
        if digest and dig(show, "capabilities") is not None:
            ctx.cache.remember_show(ctx.root, digest, show)
        return show


PROVIDER = OllamaProvider()
