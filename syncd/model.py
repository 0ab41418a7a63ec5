"""Value types shared by the pure core and the edges: provider kinds, specs, remote models, secrets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from urllib.parse import parse_qsl, urlsplit


class Kind(StrEnum):
    """How syncd talks to a provider (DESIGN §2)."""

    OLLAMA = "ollama"
    LMSTUDIO = "lmstudio"
    LLAMACPP = "llamacpp"
    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    GEMINI = "gemini"
    AZURE = "azure"  # Azure OpenAI: deployments its data plane cannot list


# The kinds that run models on the machine they answer from: they never get a price.
LOCAL_KINDS = frozenset({Kind.OLLAMA, Kind.LMSTUDIO, Kind.LLAMACPP})


class ModelKind(StrEnum):
    CHAT = "chat"
    EMBEDDING = "embedding"
    OTHER = "other"


class Secret:
    """A credential that never shows itself in a repr, an f-string, a log line or a traceback."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def url_secrets(url: str) -> tuple[str, ...]:
    """The parts of a URL that may be credentials: userinfo (user and password) and query values."""
    try:
        parts = urlsplit(url)
        found = [p for p in (parts.username, parts.password) if p]
        found += [v for _, v in parse_qsl(parts.query, keep_blank_values=True) if v]
    except ValueError:
        return ()
    return tuple(found)


def _no_headers() -> Mapping[str, Secret]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """One custom provider block of one target, with `{env:}`/`{file:}` resolved in memory."""

    id: str
    base_url: str
    npm: str | None = None
    api_key: Secret | None = None
    headers: Mapping[str, Secret] = field(default_factory=_no_headers, repr=False)
    kind: Kind | None = None  # forced by the settings; None = detect

    def secrets(self) -> tuple[str, ...]:
        """Every value that must never be shown: the key, each header, the baseURL's userinfo and
        query values."""
        values = [s.reveal() for s in self.headers.values()]
        if self.api_key:
            values.append(self.api_key.reveal())
        return (*values, *url_secrets(self.base_url))


@dataclass(frozen=True, slots=True)
class RemoteModel:
    """One model as a provider serves it, normalised (DESIGN §4.2). None means unknown.

    `context` is what the server serves when that is known (or, for a remote service, its one
    number); a local server may also say the model's maximum (`max_context`) and what a loaded
    instance serves right now (`live_context`). `discover` settles those three into `context`
    and `context_served` (False: `context` is the maximum and the server may serve less).
    """

    id: str
    name: str | None = None
    context: int | None = None
    output: int | None = None
    max_context: int | None = None
    live_context: int | None = None
    context_served: bool | None = None
    tool_call: bool | None = None
    reasoning: bool | None = None
    vision: bool | None = None
    attachment: bool | None = None
    input_modalities: tuple[str, ...] | None = None
    output_modalities: tuple[str, ...] | None = None
    kind: ModelKind | None = None  # None: nothing stated it (planning treats it as chat)
    cost_in: float | None = None  # USD per million tokens
    cost_out: float | None = None
    cache_read: float | None = None
    cache_write: float | None = None
    status: str | None = None  # "deprecated" when upstream marks it so
    digest: str | None = None


@dataclass(frozen=True, slots=True)
class Skipped:
    """A served model that syncd will not write, and why (suspicious ID, filtered, alias...)."""

    id: str
    reason: str


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What one provider served in one fetch."""

    provider_id: str
    kind: Kind
    models: tuple[RemoteModel, ...]
    suspicious: tuple[Skipped, ...] = ()
    unlisted: str | None = None  # why the provider has no model list (404/405, Azure): left as written


@dataclass(frozen=True, slots=True)
class Limits:
    """Time, size and concurrency bounds of one provider fetch (DESIGN §4.1)."""

    connect: float = 3.0
    read: float = 10.0
    total: float = 30.0
    max_body: int = 32 * 1024 * 1024  # bytes on the wire, and again once decoded (gzip, deflate)
    max_models: int = 5000
    max_memory: int = 48 * 1024 * 1024  # what the decoded JSON of one answer may hold in memory
    enrich_concurrency: int = 4
    providers_at_once: int = 64  # more at once only makes the connection pool's queue scans slower
