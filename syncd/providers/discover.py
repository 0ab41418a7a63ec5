"""Provider kinds behind one Protocol: kind detection, the registry, and the fetch entry points."""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import json
import re
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import httpx

from syncd.errors import AuthFailed, BadResponse, FetchError, FetchTimeout, Unreachable
from syncd.logs import register_secret
from syncd.model import LOCAL_KINDS, FetchResult, Kind, Limits, ProviderSpec, RemoteModel
from syncd.providers import normalize
from syncd.providers.catalog import Catalog
from syncd.providers.fetch import DEFAULT_LIMITS, check_count, make_client, redact_url, request_json, root_url

__all__ = [
    "FetchCache", "Context", "Provider", "NotListed", "make_client", "detect_kind", "fetch_models",
    "fetch_many", "provider_for",
]

_MAX_SHOWS = 4000
_MAX_CONTEXTS = 4000
_MAX_LISTS = 256  # list URLs whose last answer is remembered (one per provider)
_M = TypeVar("_M")
_PORTS = {11434: Kind.OLLAMA, 1234: Kind.LMSTUDIO, 8080: Kind.LLAMACPP}
_ID_WORDS = (
    ("ollama", Kind.OLLAMA), ("lmstudio", Kind.LMSTUDIO), ("lm-studio", Kind.LMSTUDIO),
    ("lm_studio", Kind.LMSTUDIO), ("llamacpp", Kind.LLAMACPP), ("llama.cpp", Kind.LLAMACPP),
    ("llama-cpp", Kind.LLAMACPP), ("llama_cpp", Kind.LLAMACPP),
)
_NPM = {"@ai-sdk/anthropic": Kind.ANTHROPIC, "@ai-sdk/google": Kind.GEMINI, "@ai-sdk/azure": Kind.AZURE}
_AZURE_HOSTS = (".openai.azure.com", ".cognitiveservices.azure.com", ".services.ai.azure.com")
# Kinds whose servers may simply have no model list (Anthropic-compatible endpoints, some
# gateways): a 404/405 there means "not listed", not a broken provider.
_MAY_NOT_LIST = (Kind.OPENAI, Kind.ANTHROPIC, Kind.GEMINI)
_VERSIONED = re.compile(r"/v\d+[a-z0-9]*$")


class NotListed(Exception):  # noqa: N818  (a state of the provider, not an error)
    """A provider that cannot list its models: its models stay as the user wrote them."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


CACHE_FILE = "fetch-cache.json"  # in the state dir: the engine keeps it, doctor reads it


@dataclass
class FetchCache:
    """What is worth remembering between cycles, per server: its detected kind, Ollama's
    /api/show answers by digest, and what each loaded model served. Never shared between servers:
    one that claims another's digest must not describe the other's model."""

    kinds: dict[str, Kind] = field(default_factory=dict)  # base URL -> kind
    shows: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # root -> digest -> show
    # the context a loaded instance served when last seen, by "<baseURL> <model ID>": what a
    # model unloaded since still serves when it loads again (LM Studio, llama.cpp router, Ollama)
    contexts: dict[str, int] = field(default_factory=dict)
    # not saved: each list URL's last items and the models read from them, so a daemon asking
    # every second for an unchanged 3,000-model list compares it instead of reading it again
    lists: dict[str, tuple[list[Any], list[Any]]] = field(default_factory=dict, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"kinds": {url: str(kind) for url, kind in self.kinds.items()},
                "shows_by_server": {root: dict(by) for root, by in self.shows.items()},
                "contexts": dict(self.contexts)}

    @classmethod
    def from_json(cls, data: object) -> FetchCache:
        """Tolerant: anything malformed is dropped, never an error (a cache can always be rebuilt).

        The flat `shows` of older versions (keyed by digest alone, for every server) is dropped.
        """
        cache = cls()
        if not isinstance(data, Mapping):
            return cache
        kinds, shows = data.get("kinds"), data.get("shows_by_server")
        contexts = data.get("contexts")
        if isinstance(kinds, Mapping):
            for url, value in kinds.items():
                if isinstance(url, str) and value in Kind._value2member_map_:
                    cache.kinds[url] = Kind(value)
        if isinstance(shows, Mapping):
            for root, by_digest in shows.items():
                if isinstance(root, str) and isinstance(by_digest, Mapping):
                    for digest, show in by_digest.items():
                        if isinstance(digest, str) and isinstance(show, Mapping):
                            cache.remember_show(root, digest, dict(show))
        if isinstance(contexts, Mapping):
            for key, length in contexts.items():
                if isinstance(key, str) and normalize.as_int(length):
                    cache.contexts[key] = int(length)
        return cache

    @classmethod
    def read(cls, state_dir: Path) -> FetchCache:
        """The saved cache of `state_dir`; empty when missing or unreadable."""
        try:
            return cls.from_json(json.loads((state_dir / CACHE_FILE).read_bytes()))
        except (OSError, ValueError):
            return cls()

    def show(self, root: str, digest: str) -> dict[str, Any] | None:
        """What the server at `root` said about the model with `digest`, if it was asked before."""
        return self.shows.get(root, {}).get(digest)

    def remember_show(self, root: str, digest: str, show: dict[str, Any]) -> None:
        if sum(len(by) for by in self.shows.values()) >= _MAX_SHOWS:
            oldest = next(iter(self.shows))
            by = self.shows[oldest]
            by.pop(next(iter(by)))
            if not by:
                del self.shows[oldest]
        self.shows.setdefault(root, {})[digest] = show

    def keep_shows(self, root: str, digests: Collection[str]) -> None:
        """Forget what `root` said about the models it no longer lists (`digests`: its list now).

        A server that pulls and removes models for days would otherwise fill the cache with
        answers about models long gone (up to _MAX_SHOWS, all of them in the saved file too).
        """
        by = self.shows.get(root)
        if by is None:
            return
        for digest in [d for d in by if d not in digests]:
            del by[digest]
        if not by:
            del self.shows[root]

    def models_of(self, url: str, items: list[Any], read: Callable[[list[Any]], list[_M]]) -> list[_M]:
        """`read(items)`, or what it returned for the same items from `url` last time (`read`
        must depend on the items alone)."""
        last = self.lists.get(url)
        if last is not None and last[0] == items:
            return list(last[1])
        models = read(items)
        if url not in self.lists and len(self.lists) >= _MAX_LISTS:
            self.lists.pop(next(iter(self.lists)))
        self.lists[url] = (items, models)
        return list(models)

    def settle_contexts(self, base_url: str, models: list[RemoteModel]) -> list[RemoteModel]:
        """Each model's context made independent of load state, remembering what loaded ones serve."""
        out = []
        for model in models:
            key = f"{base_url} {model.id}"
            settled, live = normalize.settle_context(model, self.contexts.get(key))
            if live is not None and self.contexts.get(key) != live:
                if key not in self.contexts and len(self.contexts) >= _MAX_CONTEXTS:
                    self.contexts.pop(next(iter(self.contexts)))
                self.contexts[key] = live
            out.append(settled)
        return out


@dataclass(frozen=True)
class Context:
    """Everything a provider module needs for one fetch; its `get` is the only way it does HTTP."""

    spec: ProviderSpec
    client: httpx.AsyncClient
    limits: Limits
    cache: FetchCache
    headers: Mapping[str, str]

    @property
    def base(self) -> str:
        return self.spec.base_url.rstrip("/")

    @property
    def root(self) -> str:
        return root_url(self.spec.base_url)

    @property
    def secrets(self) -> tuple[str, ...]:
        return self.spec.secrets()

    async def get(self, url: str, *, method: str = "GET", body: object = None) -> Any:
        return await request_json(self.client, url, limits=self.limits, headers=self.headers,
                                  secrets=self.secrets, method=method, body=body)


class Provider(Protocol):
    """One provider kind: lists what a server serves, as RemoteModels (screening happens after)."""

    kind: Kind

    def auth_headers(self, spec: ProviderSpec) -> dict[str, str]: ...

    async def list_models(self, ctx: Context) -> list[RemoteModel]: ...


_MODULES = {Kind.OLLAMA: "ollama", Kind.LMSTUDIO: "lmstudio", Kind.LLAMACPP: "llamacpp",
            Kind.OPENAI: "openai", Kind.ANTHROPIC: "anthropic", Kind.GEMINI: "gemini",
            Kind.AZURE: "azure"}


def provider_for(kind: Kind) -> Provider:
    """The registered provider module of a kind."""
    module = importlib.import_module(f"syncd.providers.kinds.{_MODULES[kind]}")
    provider: Provider = module.PROVIDER
    return provider


def bearer_headers(spec: ProviderSpec) -> dict[str, str]:
    """OpenAI-style auth: `Authorization: Bearer <key>` when a key is set (DESIGN §1.7)."""
    return {"Authorization": f"Bearer {spec.api_key.reveal()}"} if spec.api_key else {}


def is_azure(spec: ProviderSpec) -> bool:
    """Azure OpenAI by its host, its `api-version` query, or its `api-key` header."""
    try:
        parts = urlsplit(spec.base_url)
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    return (host.endswith(_AZURE_HOSTS) or "api-version=" in parts.query
            or any(name.lower() == "api-key" for name in spec.headers))


def _static_kind(spec: ProviderSpec) -> Kind | None:
    if spec.kind is not None:
        return spec.kind
    if spec.npm in _NPM:
        return _NPM[spec.npm]
    if is_azure(spec):
        return Kind.AZURE
    lowered = spec.id.lower()
    for word, kind in _ID_WORDS:
        if word in lowered:
            return kind
    try:
        port = urlsplit(spec.base_url).port
    except ValueError:
        return None
    return _PORTS.get(port) if port else None


def probe_matches(kind: Kind, data: object) -> bool:
    if not isinstance(data, Mapping):
        return False
    if kind is Kind.OLLAMA:
        return isinstance(data.get("version"), str)
    if kind is Kind.LMSTUDIO:
        return isinstance(data.get("data"), list) and data.get("object") == "list"
    return any(k in data for k in ("default_generation_settings", "chat_template", "n_ctx"))


async def detect_kind(spec: ProviderSpec, client: httpx.AsyncClient, cache: FetchCache | None,
                      *, limits: Limits = DEFAULT_LIMITS) -> Kind:
    """Setting, npm package, provider id, well-known port, cached probe, live probe, else openai."""
    known = _static_kind(spec)
    if known is not None:
        return known
    if cache is not None and spec.base_url in cache.kinds:
        return cache.kinds[spec.base_url]
    ctx = Context(spec, client, limits, cache or FetchCache(), bearer_headers(spec))
    probes = ((Kind.OLLAMA, "/api/version"), (Kind.LMSTUDIO, "/api/v0/models"),
              (Kind.LLAMACPP, "/props"))
    answers = await asyncio.gather(*(ctx.get(ctx.root + path) for _, path in probes),
                                   return_exceptions=True)
    transport = [a for a in answers if isinstance(a, (Unreachable, FetchTimeout))]
    if len(transport) == len(answers):
        # name the URL the user wrote, not the probe's path under it
        first = transport[0]
        detail = first.reason.split(": ", 1)[-1]
        raise type(first)(f"{redact_url(spec.base_url)}: {detail}")
    for (kind, _), answer in zip(probes, answers, strict=True):
        if isinstance(answer, BaseException):
            if not isinstance(answer, FetchError):
                raise answer
            continue
        if probe_matches(kind, answer):
            break
    else:
        kind = Kind.OPENAI
    if cache is not None:
        cache.kinds[spec.base_url] = kind
    return kind


async def _unlisted(ctx: Context, exc: BadResponse) -> str:
    """Why a 404/405 on the model list means "not listed" — unless the baseURL only lacks its
    version prefix (`{base}/v1/models` answers), which stays the error it is."""
    path = urlsplit(ctx.base).path.rstrip("/")
    if exc.status == 404 and not _VERSIONED.search(path):
        try:
            await ctx.get(ctx.base + "/v1/models")
        except AuthFailed:
            raise exc from None  # the route exists; it only wants a key
        except FetchError:
            pass
        else:
            raise exc
    return f"does not list its models (HTTP {exc.status} on its /models); left as written"


def _is_loopback(base_url: str) -> bool:
    try:
        host = (urlsplit(base_url).hostname or "").lower()
    except ValueError:
        return False
    return host in ("localhost", "::1") or host.startswith("127.")


def _settle(spec: ProviderSpec, kind: Kind, models: list[RemoteModel], cache: FetchCache,
            catalog: Catalog | None) -> list[RemoteModel]:
    """Stable contexts, catalog enrichment from the same service, then the rules that outrank both."""
    models = cache.settle_contexts(spec.base_url, models)
    local = kind in LOCAL_KINDS
    if catalog is not None:
        priced = not (local or _is_loopback(spec.base_url))
        models = [catalog.enrich(spec.id, m, base_url=spec.base_url, prices=priced) for m in models]
    models = [normalize.settle_kind(m) for m in models]
    if local:  # never a price for a model served from this machine (DESIGN §4.2)
        models = [normalize.unpriced(m) for m in models]
    if kind in (Kind.LMSTUDIO, Kind.LLAMACPP):  # both accept tools for every model
        models = [dataclasses.replace(m, tool_call=normalize.hint(m.tool_call)) for m in models]
    return models


async def _fetch(spec: ProviderSpec, client: httpx.AsyncClient, limits: Limits,
                 cache: FetchCache, catalog: Catalog | None) -> FetchResult:
    kind = await detect_kind(spec, client, cache, limits=limits)
    provider = provider_for(kind)
    headers = {**provider.auth_headers(spec), **{k: v.reveal() for k, v in spec.headers.items()}}
    ctx = Context(spec, client, limits, cache, headers)
    try:
        raw = await provider.list_models(ctx)
    except NotListed as exc:
        return FetchResult(spec.id, kind, (), unlisted=exc.reason)
    except BadResponse as exc:
        if kind not in _MAY_NOT_LIST or exc.status not in (404, 405):
            raise
        return FetchResult(spec.id, kind, (), unlisted=await _unlisted(ctx, exc))
    check_count(len(raw), limits, redact_url(spec.base_url))
    models, suspicious = normalize.screen(raw)
    models = _settle(spec, kind, models, cache, catalog)
    return FetchResult(spec.id, kind, tuple(models), tuple(suspicious))


async def fetch_models(spec: ProviderSpec, client: httpx.AsyncClient, *, limits: Limits = DEFAULT_LIMITS,
                       cache: FetchCache | None = None, catalog: Catalog | None = None) -> FetchResult:
    """Fetch and normalise one provider within `limits.total`; raises only FetchError subclasses."""
    for secret in spec.secrets():  # httpx's own request log (-vv) goes through the same scrubber
        register_secret(secret)
    try:
        async with asyncio.timeout(limits.total):
            return await _fetch(spec, client, limits, cache or FetchCache(), catalog)
    except FetchError:
        raise
    except TimeoutError:
        raise FetchTimeout(
            f"{redact_url(spec.base_url)}: no complete answer within {limits.total:g}s"
        ) from None
    except Exception as exc:  # a bug or an exotic payload must stay this provider's failure
        raise BadResponse(
            f"{redact_url(spec.base_url)}: could not read the answer ({type(exc).__name__})"
        ) from exc


async def fetch_many(specs: Sequence[ProviderSpec], client: httpx.AsyncClient, *,
                     limits: Limits = DEFAULT_LIMITS, cache: FetchCache | None = None,
                     catalog: Catalog | None = None,
                     seconds: list[float] | None = None) -> list[FetchResult | FetchError]:
    """Fetch every provider concurrently; results in the order of `specs`, failures as values.

    `seconds`, when given, gets each provider's own time in the same order (from its slot to its
    answer): one hung server's wait is not its neighbours'.
    """
    shared = cache if cache is not None else FetchCache()
    # each provider's time budget starts when it gets a slot, so waiting here costs no timeout
    slots = asyncio.Semaphore(limits.providers_at_once)
    took = [0.0] * len(specs)

    async def one(i: int, spec: ProviderSpec) -> FetchResult | FetchError:
        async with slots:
            started = time.monotonic()
            try:
                return await fetch_models(spec, client, limits=limits, cache=shared, catalog=catalog)
            except FetchError as exc:
                return exc
            finally:
                took[i] = time.monotonic() - started

    results = list(await asyncio.gather(*(one(i, s) for i, s in enumerate(specs))))
    if seconds is not None:
        seconds[:] = took
    return results
