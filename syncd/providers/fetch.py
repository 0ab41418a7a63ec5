"""The only module that speaks HTTP: a client factory, bounded JSON requests, errors mapped to FetchError."""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from syncd.errors import (
    AuthFailed,
    BadResponse,
    FetchError,
    FetchTimeout,
    RateLimited,
    ServerFailed,
    Unreachable,
)
from syncd.model import Limits

DEFAULT_LIMITS = Limits()  # frozen, so one shared default is safe

__all__ = [
    "DEFAULT_LIMITS", "make_client", "request_json", "unwrap_list", "check_count", "redact_url",
    "root_url",
]

_AUTH_WORDS = re.compile(
    r"api[ _-]?key|apikey|unauthori[sz]ed|authenticat|invalid[ _]token|permission|forbidden|credential",
    re.IGNORECASE,
)
_SECRET_QUERY = {"key", "api_key", "apikey", "token", "access_token"}
_MAX_DETAIL = 160


class _SchemeTransport(httpx.AsyncBaseTransport):
    """Builds each connection pool on first use: most providers are plain http on loopback, and
    the verifying TLS pool costs ~35 ms of certificate loading that `syncd once` need not pay."""

    def __init__(self, pool: httpx.Limits) -> None:
        self._pool = pool
        self._by_scheme: dict[str, httpx.AsyncHTTPTransport] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        scheme = request.url.scheme
        transport = self._by_scheme.get(scheme)
        if transport is None:
            # a plain-http pool never performs a TLS handshake, so it needs no certificates
            transport = httpx.AsyncHTTPTransport(limits=self._pool, verify=scheme == "https")
            self._by_scheme[scheme] = transport
        return await transport.handle_async_request(request)

    async def aclose(self) -> None:
        for transport in self._by_scheme.values():
            await transport.aclose()


def make_client(limits: Limits = DEFAULT_LIMITS) -> httpx.AsyncClient:
    """One client for many providers: per-phase timeouts from `limits`, redirects followed."""
    timeout = httpx.Timeout(
        connect=limits.connect, read=limits.read, write=limits.read, pool=limits.total
    )
    return httpx.AsyncClient(
        timeout=timeout,
        follow_redirects=True,
        max_redirects=5,
        transport=_SchemeTransport(httpx.Limits(max_connections=200, max_keepalive_connections=50)),
        headers={"Accept": "application/json", "User-Agent": "opencode-syncd"},
    )


def root_url(base_url: str) -> str:
    """The server root: baseURL without a trailing `/v1` (Ollama, LM Studio, llama.cpp, LiteLLM)."""
    base = base_url.rstrip("/")
    return base[: -len("/v1")] if base.endswith("/v1") else base


def redact_url(url: str) -> str:
    """The URL with any password and key-like query values replaced by `***`."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, host = netloc.rsplit("@", 1)
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:***@{host}" if ":" in userinfo else f"{user}@{host}"
        query = parts.query
        if query:
            pairs = [
                (k, "***" if k.lower() in _SECRET_QUERY else v)
                for k, v in parse_qsl(query, keep_blank_values=True)
            ]
            query = urlencode(pairs, safe="*")
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return "<invalid URL>"


def _scrub(text: str, secrets: Iterable[str]) -> str:
    """One short line without control characters or any of `secrets`."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    text = re.sub(r"[\x00-\x1f\x7f]+", " ", text).strip()
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"


def _retry_after(value: str | None, now: float) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def _error_detail(body: bytes) -> str:
    """The human part of an error body, if it has one: `error.message`, `error`, `message`, `detail`."""
    try:
        data = json.loads(body)
    except ValueError:
        return body[:300].decode("utf-8", "replace")
    return _message_of(data)


def _message_of(data: object) -> str:
    if isinstance(data, Mapping):
        for key in ("error", "message", "detail"):
            inner = data.get(key)
            if isinstance(inner, str):
                return inner
            if isinstance(inner, Mapping):
                return _message_of(inner) or json.dumps(inner)[:300]
    return ""


async def _read_capped(response: httpx.Response, cap: int) -> bytes:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > cap:
        raise BadResponse(f"response of {int(declared)} bytes is over the {cap}-byte limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > cap:
            raise BadResponse(f"response is over the {cap}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


async def request_json(
    client: httpx.AsyncClient,
    url: str,
    *,
    limits: Limits = DEFAULT_LIMITS,
    headers: Mapping[str, str] | None = None,
    secrets: Iterable[str] = (),
    method: str = "GET",
    body: object = None,
    now: float | None = None,
) -> Any:
    """Send one request and return the decoded JSON body; every failure is a FetchError."""
    secrets = tuple(secrets)
    where = f"{method} {_scrub(redact_url(url), secrets)}"
    started = False
    try:
        async with client.stream(method, url, headers=headers, json=body) as response:
            started = True
            status = response.status_code
            raw = await _read_capped(response, limits.max_body)
            ctype = response.headers.get("content-type", "")
            retry_header = response.headers.get("retry-after")
    except FetchError as exc:
        raise type(exc)(f"{where}: {exc.reason}") from None
    except httpx.TimeoutException as exc:
        phase = {
            httpx.ConnectTimeout: f"no connection within {limits.connect:g}s",
            httpx.PoolTimeout: "no free connection",
        }.get(type(exc), f"no answer within {limits.read:g}s")
        raise FetchTimeout(f"{where}: {phase}; is the server busy or stuck?") from None
    except httpx.RemoteProtocolError:
        if started:
            raise BadResponse(f"{where}: connection closed mid-response (truncated body)") from None
        raise Unreachable(f"{where}: server closed the connection without answering") from None
    except (httpx.UnsupportedProtocol, httpx.InvalidURL):
        raise Unreachable(f"{where}: not a usable http(s) URL; check options.baseURL") from None
    except httpx.TooManyRedirects:
        raise BadResponse(f"{where}: too many redirects; check options.baseURL") from None
    except httpx.HTTPError as exc:
        detail = _scrub(str(exc) or type(exc).__name__, secrets)
        raise Unreachable(f"{where}: cannot connect ({detail}); is the server running?") from None
    return _decode(where, status, ctype, raw, retry_header, secrets, now)


def _decode(
    where: str,
    status: int,
    ctype: str,
    raw: bytes,
    retry_header: str | None,
    secrets: tuple[str, ...],
    now: float | None,
) -> Any:
    detail = _scrub(_error_detail(raw), secrets) if status >= 400 else ""
    suffix = f": {detail}" if detail else ""
    if status in (401, 403):
        raise AuthFailed(f"{where}: HTTP {status}{suffix}; check the API key")
    if status in (429, 529):
        wait = _retry_after(retry_header, time.time() if now is None else now)
        raise RateLimited(f"{where}: HTTP {status} rate-limited{suffix}", retry_after=wait)
    if status == 400 and _AUTH_WORDS.search(detail):
        raise AuthFailed(f"{where}: HTTP 400{suffix}; check the API key")
    if status >= 500:
        raise ServerFailed(f"{where}: HTTP {status}{suffix}; try again later", status=status)
    if status == 404:
        raise BadResponse(f"{where}: HTTP 404 not found; check the baseURL and its /v1-style prefix")
    if status >= 300:
        raise BadResponse(f"{where}: HTTP {status}{suffix}")
    head = raw.lstrip()[:64].lower()
    if "html" in ctype or head.startswith((b"<!doctype", b"<html", b"<")):
        raise BadResponse(f"{where}: answered with an HTML page, not JSON; check the baseURL")
    try:
        data = json.loads(raw)
    except ValueError:
        what = "an empty body" if not raw.strip() else "truncated or invalid JSON"
        raise BadResponse(f"{where}: answered with {what}") from None
    if (isinstance(data, Mapping) and data.get("error") not in (None, False)
            and not any(k in data for k in ("data", "models"))):
        message = _scrub(_message_of(data), secrets) or "an error"
        error = AuthFailed if _AUTH_WORDS.search(message) else BadResponse
        raise error(f"{where}: answered 200 with an error: {message}")
    return data


def unwrap_list(data: object, where: str, keys: tuple[str, ...] = ("data", "models")) -> list[Any]:
    """The model list inside `{"data": [...]}`, `{"models": [...]}`, a bare list; `data: null` = []."""
    if isinstance(data, list):
        return data
    if isinstance(data, Mapping):
        for key in keys:
            if key in data:
                value = data[key]
                if value is None:
                    return []
                if isinstance(value, list):
                    return value
                raise BadResponse(f"{where}: `{key}` is not a list")
    raise BadResponse(f"{where}: unexpected shape, expected a list of models")


def check_count(count: int, limits: Limits, where: str) -> None:
    """Refuse lists over the limit instead of truncating them (a truncated list would remove models)."""
    if count > limits.max_models:
        raise BadResponse(
            f"{where}: served {count} models, over the limit of {limits.max_models}; "
            "narrow it with include/exclude or raise the limit"
        )
