"""Which OpenCode configs syncd maintains, and which provider blocks in them are custom providers."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from syncd.paths import OPENCODE_GLOBAL_NAMES, opencode_config_dir

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]", "0.0.0.0"})


def default_targets() -> list[Path]:
    """OpenCode's global files that exist, then `$OPENCODE_CONFIG` (DESIGN §1.1), without repeats."""
    folder = opencode_config_dir()
    found = [folder / name for name in OPENCODE_GLOBAL_NAMES if (folder / name).is_file()]
    extra = os.environ.get("OPENCODE_CONFIG")
    if extra:
        found.append(Path(extra).expanduser())
    return _unique(found)


def resolve_targets(cli: Sequence[str] | None, configured: Sequence[Path] | None) -> list[Path]:
    """`--config` wins over the settings' `configs`, which win over OpenCode's defaults."""
    if cli:
        return _unique(Path(p).expanduser() for p in cli)
    if configured:
        return _unique(Path(p).expanduser() for p in configured)
    return default_targets()


def global_target() -> Path:
    """The global file detection writes to: the last existing one OpenCode loads, else a new .jsonc."""
    folder = opencode_config_dir()
    for name in reversed(OPENCODE_GLOBAL_NAMES):
        if (folder / name).is_file():
            return folder / name
    return folder / "opencode.jsonc"


def _unique(paths: Any) -> list[Path]:
    seen: set[Path] = set()
    out: list[Path] = []
    for p in paths:
        key = Path(os.path.abspath(p))
        if key not in seen:
            seen.add(key)
            out.append(key)
    return out


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
