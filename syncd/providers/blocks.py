"""A config's `provider` blocks as discovery reads them: which are custom, their models, where they point."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]", "0.0.0.0"})


def custom_providers(data: object) -> dict[str, Mapping[str, Any]]:
    """The `provider.<id>` blocks with a string `options.baseURL`, in file order."""
    if not isinstance(data, Mapping):
        return {}
    providers = data.get("provider")
    if not isinstance(providers, Mapping):
        return {}
    out: dict[str, Mapping[str, Any]] = {}
    for pid, block in providers.items():
        if isinstance(block, Mapping):
            options = block.get("options")
            if isinstance(options, Mapping) and isinstance(options.get("baseURL"), str):
                out[pid] = block
    return out


def models_of(block: Mapping[str, Any]) -> Mapping[str, Any] | None:
    models = block.get("models")
    return models if isinstance(models, Mapping) else None


def fingerprint(block: Mapping[str, Any]) -> str:
    """A hash of what decides where and how a provider is asked (raw, unresolved): npm, options."""
    options = block.get("options")
    relevant = {
        "npm": block.get("npm"),
        "baseURL": options.get("baseURL") if isinstance(options, Mapping) else None,
        "apiKey": options.get("apiKey") if isinstance(options, Mapping) else None,
        "headers": options.get("headers") if isinstance(options, Mapping) else None,
        "env": block.get("env"),
    }
    blob = json.dumps(relevant, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def is_loopback(base_url: str) -> bool:
    try:
        host = urlsplit(base_url).hostname or ""
    except ValueError:
        return False
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def host_port(base_url: str) -> tuple[str, int] | None:
    """(host, port) with loopback names folded together, for "does a provider point here?"."""
    try:
        parts = urlsplit(base_url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    host = parts.hostname or ""
    if host in LOOPBACK_HOSTS or host.startswith("127."):
        host = "127.0.0.1"
    return host, port
