"""A cheap fingerprint of what a server lists now: a hash of the model IDs of `{baseURL}/models`.

The daemon polls it every few seconds for a local runtime whose model store it cannot read, and
runs the provider's job only when it changes. The IDs, not the body, are hashed: llama.cpp's
router stamps every answer with the time it was made (`"created": time(0)`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import httpx

from syncd.errors import FetchError
from syncd.model import Limits, ProviderSpec
from syncd.providers.discover import bearer_headers
from syncd.providers.fetch import request_json


def fingerprint_of(body: Any) -> str:
    """The hash of the sorted IDs of an OpenAI-style list; of the whole body when it is not one."""
    items = body.get("data") if isinstance(body, Mapping) else None
    if isinstance(items, list):
        ids = sorted(str(i.get("id")) for i in items if isinstance(i, Mapping))
        blob = json.dumps(ids, ensure_ascii=False)
    else:
        blob = json.dumps(body, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


async def list_fingerprint(spec: ProviderSpec, client: httpx.AsyncClient, limits: Limits, *,
                           rescan: bool = False) -> str | None:
    """The fingerprint of what `spec` lists now, or None when it cannot be asked (the job reports why).

    `rescan`: ask a llama.cpp router to read its folders again first (`?reload=1`).
    """
    url = spec.base_url.rstrip("/") + "/models" + ("?reload=1" if rescan else "")
    headers = {**bearer_headers(spec), **{k: v.reveal() for k, v in spec.headers.items()}}
    secrets = [v for v in headers.values() if v]
    try:
        body = await request_json(client, url, limits=limits, headers=headers, secrets=secrets)
    except FetchError:
        return None
    return fingerprint_of(body)
