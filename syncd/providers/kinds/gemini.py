"""Google Gemini (`@ai-sdk/google`): `GET {baseURL}/models?pageSize=1000`, following `nextPageToken`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from syncd.errors import BadResponse
from syncd.model import Kind, ModelKind, ProviderSpec, RemoteModel
from syncd.providers.discover import Context
from syncd.providers.fetch import check_count, unwrap_list
from syncd.providers.normalize import as_bool, as_int, as_str, kind_from_id

_MAX_PAGES = 100


def _kind(model_id: str, methods: object) -> ModelKind | None:
    """The ID first: TTS and image models also answer `generateContent`, but are not chat."""
    named = kind_from_id(model_id)
    if named is not None:
        return named
    if not isinstance(methods, list):
        return None
    if "generateContent" in methods:
        return ModelKind.CHAT
    if "embedContent" in methods or "batchEmbedContents" in methods:
        return ModelKind.EMBEDDING
    return ModelKind.OTHER


def from_item(item: Mapping[str, Any]) -> RemoteModel:
    """A Gemini model: its ID is `name` without the `models/` prefix, as `@ai-sdk/google` expects."""
    name = as_str(item.get("name")) or ""
    model_id = name.removeprefix("models/")
    return RemoteModel(
        id=model_id,
        name=as_str(item.get("displayName")),
        context=as_int(item.get("inputTokenLimit")),
        output=as_int(item.get("outputTokenLimit")),
        reasoning=as_bool(item.get("thinking")),
        kind=_kind(model_id, item.get("supportedGenerationMethods")),
    )


class GeminiProvider:
    kind = Kind.GEMINI

    def auth_headers(self, spec: ProviderSpec) -> dict[str, str]:
        return {"x-goog-api-key": spec.api_key.reveal()} if spec.api_key else {}

    async def list_models(self, ctx: Context) -> list[RemoteModel]:
        items: list[Mapping[str, Any]] = []
        token: str | None = None
        for _ in range(_MAX_PAGES):
            query = {"pageSize": "1000", **({"pageToken": token} if token else {})}
            url = f"{ctx.base}/models?{urlencode(query)}"
            payload = await ctx.get(url)
            items += [i if isinstance(i, Mapping) else {} for i in unwrap_list(payload, url, ("models",))]
            check_count(len(items), ctx.limits, ctx.base + "/models")
            nxt = payload.get("nextPageToken") if isinstance(payload, Mapping) else None
            if not isinstance(nxt, str) or not nxt:
                return [from_item(i) for i in items]
            if nxt == token:
                raise BadResponse(f"{ctx.base}/models: nextPageToken repeats itself")
            token = nxt
        raise BadResponse(f"{ctx.base}/models: more than {_MAX_PAGES} pages")


PROVIDER = GeminiProvider()
