"""Anthropic (`@ai-sdk/anthropic`): `GET {baseURL}/models?limit=1000` with `x-api-key`, paged."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from syncd.errors import BadResponse
from syncd.model import Kind, ModelKind, ProviderSpec, RemoteModel
from syncd.providers.discover import Context
from syncd.providers.fetch import check_count, unwrap_list
from syncd.providers.normalize import as_int, as_str, dig, inputs_from, supported

API_VERSION = "2023-06-01"
_MAX_PAGES = 100


def from_item(item: Mapping[str, Any]) -> RemoteModel:
    """A ModelInfo: limits, and `capabilities` leaves of the form `{"supported": bool}`."""
    caps = item.get("capabilities")
    inputs = inputs_from(image=supported(dig(caps, "image_input")),
                         pdf=supported(dig(caps, "pdf_input")))
    return RemoteModel(
        id=as_str(item.get("id")) or "",
        name=as_str(item.get("display_name")),
        context=as_int(item.get("max_input_tokens")),
        output=as_int(item.get("max_tokens")),
        reasoning=supported(dig(caps, "thinking")),
        vision=None if inputs is None else "image" in inputs, input_modalities=inputs,
        kind=ModelKind.CHAT,
    )


class AnthropicProvider:
    kind = Kind.ANTHROPIC

    def auth_headers(self, spec: ProviderSpec) -> dict[str, str]:
        headers = {"anthropic-version": API_VERSION}
        if spec.api_key:
            headers["x-api-key"] = spec.api_key.reveal()
        return headers

    async def list_models(self, ctx: Context) -> list[RemoteModel]:
        items: list[Mapping[str, Any]] = []
        after: str | None = None
        for _ in range(_MAX_PAGES):
            query = {"limit": "1000", **({"after_id": after} if after else {})}
            url = f"{ctx.base}/models?{urlencode(query)}"
            payload = await ctx.get(url)
            items += [i if isinstance(i, Mapping) else {} for i in unwrap_list(payload, url, ("data",))]
            check_count(len(items), ctx.limits, ctx.base + "/models")
            last = payload.get("last_id") if isinstance(payload, Mapping) else None
            if not (isinstance(payload, Mapping) and payload.get("has_more") is True):
                return [from_item(i) for i in items]
            if not isinstance(last, str) or not last or last == after:
                raise BadResponse(f"{ctx.base}/models: has_more without a new last_id")
            after = last
        raise BadResponse(f"{ctx.base}/models: more than {_MAX_PAGES} pages")


PROVIDER = AnthropicProvider()
