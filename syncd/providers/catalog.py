"""OpenCode's models.dev catalog: loading it, and filling unknown model fields by exact ID match."""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from syncd.errors import FetchError
from syncd.localfile import DATA_LIMIT, SMALL_LIMIT, read_bytes
from syncd.model import Limits, ModelKind, RemoteModel
from syncd.providers.normalize import as_bool, as_int, dig, modalities

# OpenCode's own providers that get keys through `opencode auth login`; used when no catalog is
# cached, and by `syncd add`, which will not shadow one of them with a custom block
BUILTIN_IDS = frozenset({
    "anthropic", "openai", "google", "google-vertex", "openrouter", "github-copilot", "opencode",
    "groq", "deepseek", "xai", "mistral", "amazon-bedrock", "azure", "cerebras", "fireworks-ai",
    "togetherai", "deepinfra", "huggingface", "vercel", "zai", "moonshotai", "perplexity",
})
CACHE_NAME = "catalog.json"
META_NAME = "catalog.meta.json"
MAX_AGE = 24 * 3600.0


class Catalog:
    """`{providerID: {api?, models: {modelID: {...}}}}`; lookups are exact, never fuzzy (DESIGN §4.2)."""

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        self._providers: dict[str, Mapping[str, Any]] = {}
        self._by_api: dict[str, str] = {}
        for pid, block in (data or {}).items():
            models = block.get("models") if isinstance(block, Mapping) else None
            if isinstance(pid, str) and isinstance(models, Mapping):
                self._providers[pid] = models
                api = block.get("api")
                if isinstance(api, str) and api:
                    self._by_api.setdefault(_api_key(api), pid)

    def __len__(self) -> int:
        return len(self._providers)

    def has_provider(self, pid: str) -> bool:
        return pid in self._providers

    def model_ids(self, pid: str) -> list[str]:
        return list(self._providers.get(pid, {}))

    def _entry(self, pid: str, model_id: str) -> Mapping[str, Any] | None:
        entry = self._providers.get(pid, {}).get(model_id)
        return entry if isinstance(entry, Mapping) else None

    def lookup(self, provider_id: str, model_id: str,
               base_url: str | None = None) -> Mapping[str, Any] | None:
        """The catalog entry of the same service only: the same provider id; else the catalog
        provider whose API base is `base_url`; else `vendor/model` as vendor's own model. Never
        "the one provider listing this ID": another reseller's data is not this service's."""
        entry = self._entry(provider_id, model_id)
        if entry is not None:
            return entry
        if base_url:
            same_api = self._by_api.get(_api_key(base_url))
            entry = self._entry(same_api, model_id) if same_api else None
            if entry is not None:
                return entry
        if "/" in model_id:
            vendor, rest = model_id.split("/", 1)
            return self._entry(vendor, rest)
        return None

    def enrich(self, provider_id: str, model: RemoteModel, *, base_url: str | None = None,
               prices: bool = True) -> RemoteModel:
        """`model` with only its unknown fields filled from the catalog: what the provider said
        wins; `prices=False` (a model served from this machine) takes no price at all."""
        entry = self.lookup(provider_id, model.id, base_url)
        if entry is None:
            return model
        inputs = modalities(dig(entry, "modalities", "input"))
        outputs = modalities(dig(entry, "modalities", "output"))
        kind = None
        if outputs is not None and "text" not in outputs:
            kind = ModelKind.OTHER
        status = entry.get("status")
        known: dict[str, Any] = {
            "context": as_int(dig(entry, "limit", "context")),
            "output": as_int(dig(entry, "limit", "output")),
            "tool_call": as_bool(entry.get("tool_call")),
            "reasoning": as_bool(entry.get("reasoning")),
            "attachment": as_bool(entry.get("attachment")),
            "vision": ("image" in inputs) if inputs is not None else None,
            "input_modalities": inputs,
            "output_modalities": outputs,
            "kind": kind,
            "status": status if status in _STATUSES else None,
        }
        if prices:
            known.update({key: _cost(dig(entry, "cost", field)) for key, field in _COSTS})
        updates = {k: v for k, v in known.items() if v is not None and getattr(model, k) is None}
        return dataclasses.replace(model, **updates) if updates else model


_COSTS = (("cost_in", "input"), ("cost_out", "output"), ("cache_read", "cache_read"),
          ("cache_write", "cache_write"))
_STATUSES = ("alpha", "beta", "deprecated")


def _api_key(url: str) -> str:
    """A base URL compared loosely: scheme and host case, and a trailing slash, do not matter."""
    return url.strip().rstrip("/").lower()


def _cost(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        return None
    return float(value)


def parse_catalog(raw: bytes | str) -> Catalog:
    """A catalog from JSON text; anything unreadable is an empty catalog (enrichment is optional)."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return Catalog()
    return Catalog(data) if isinstance(data, Mapping) else Catalog()


def _read(path: Path) -> Catalog:
    try:
        return parse_catalog(read_bytes(path, DATA_LIMIT))
    except OSError:
        return Catalog()


def load_catalog(setting: str = "auto", *, now: float, state_dir: Path,
                 client: httpx.AsyncClient | None = None) -> Catalog:
    """Without the network: "auto" = OpenCode's cache file, "off" = empty, a URL = syncd's cached copy."""
    del now, client  # the synchronous form never fetches; see load_catalog_async
    if setting == "off":
        return Catalog()
    if setting == "auto":
        from syncd.paths import opencode_catalog_file

        return _read(opencode_catalog_file())
    return _read(state_dir / CACHE_NAME)


def _fresh(state_dir: Path, url: str, now: float) -> bool:
    try:
        meta = json.loads(read_bytes(state_dir / META_NAME, SMALL_LIMIT))
    except (OSError, ValueError, RecursionError):
        return False
    fetched = meta.get("fetched_at") if isinstance(meta, Mapping) else None
    return (isinstance(meta, Mapping) and meta.get("url") == url
            and isinstance(fetched, (int, float)) and 0 <= now - fetched < MAX_AGE
            and (state_dir / CACHE_NAME).is_file())


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # named like every syncd temp file, so a start after a kill finds and removes it
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.syncd-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


async def load_catalog_async(setting: str = "auto", *, now: float, state_dir: Path,
                             client: httpx.AsyncClient, limits: Limits | None = None) -> Catalog:
    """As load_catalog, but a URL is fetched when syncd's copy is over a day old (a stale copy beats none)."""
    if setting in ("auto", "off") or _fresh(state_dir, setting, now):
        return load_catalog(setting, now=now, state_dir=state_dir)
    from syncd.providers.fetch import request_json, url_secrets

    try:
        data = await request_json(client, setting, limits=limits or Limits(),
                                  secrets=url_secrets(setting))
    except FetchError:
        return load_catalog(setting, now=now, state_dir=state_dir)
    if not isinstance(data, Mapping):
        return load_catalog(setting, now=now, state_dir=state_dir)
    try:
        _write_atomic(state_dir / CACHE_NAME, json.dumps(data).encode())
        _write_atomic(state_dir / META_NAME, json.dumps({"url": setting, "fetched_at": now}).encode())
    except OSError:
        pass  # an unwritable state dir only costs a refetch next time
    return Catalog(data)
