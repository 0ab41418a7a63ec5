"""The only module that speaks HTTP, and its one policy: what is sent where, what is followed, every limit.

The bytes themselves go through wire.py (HTTP/1.1 on asyncio's sockets, TLS verified).

- Redirects are followed only within the origin (scheme, host, port) of the URL asked; one to
  another origin is an error naming where it pointed. So no credential of any kind (the
  Authorization, x-api-key and x-goog-api-key headers, every `options.headers` entry, URL
  userinfo) ever leaves the origin it was configured for, whatever the client's settings.
- Bodies: at most `max_body` bytes on the wire and again once decoded; one Content-Encoding
  layer (gzip or deflate, decoded piece by piece); JSON read as it arrives within `max_memory`,
  and a model list refused the moment it passes `max_models` (syncd stops reading there).
- Time: connect, read and whole-provider budgets from `Limits`.
- Every failure is a FetchError whose one-line reason names the real cause and holds no secret.
"""

from __future__ import annotations

import codecs
import email.utils
import errno
import json
import re
import ssl
import time
from collections.abc import AsyncIterator, Iterable, Mapping
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
from syncd.model import Limits, url_secrets
from syncd.providers.decoding import ACCEPT_ENCODING, BodyDecoder
from syncd.providers.jsonstream import JsonStream, too_many
from syncd.providers.wire import Http11Transport
from syncd.text import one_line

DEFAULT_LIMITS = Limits()  # frozen, so one shared default is safe

__all__ = [
    "DEFAULT_LIMITS", "make_client", "request_json", "unwrap_list", "check_count", "redact_url",
    "root_url", "url_secrets",
]

_AUTH_WORDS = re.compile(
    r"api[ _-]?key|apikey|unauthori[sz]ed|authenticat|invalid[ _]token|permission|forbidden|credential",
    re.IGNORECASE,
)
_MAX_DETAIL = 160
MAX_REDIRECTS = 5
_REDIRECTS = (301, 302, 303, 307, 308)
_ERROR_BODY = 64 * 1024  # enough of an error answer for its message
_DEFAULT_PORTS = {"http": 80, "https": 443}


def make_client(limits: Limits = DEFAULT_LIMITS) -> httpx.AsyncClient:
    """One client for many providers: per-phase timeouts from `limits`; request_json follows redirects."""
    timeout = httpx.Timeout(
        connect=limits.connect, read=limits.read, write=limits.read, pool=limits.total
    )
    return httpx.AsyncClient(
        timeout=timeout,
        follow_redirects=False,
        transport=Http11Transport(max_connections=200, max_keepalive=50),
        headers={"Accept": "application/json", "User-Agent": "opencode-syncd",
                 "Accept-Encoding": ACCEPT_ENCODING},
    )


def root_url(base_url: str) -> str:
    """The server root: baseURL without a trailing `/v1` (Ollama, LM Studio, llama.cpp, LiteLLM)."""
    base = base_url.rstrip("/")
    return base[: -len("/v1")] if base.endswith("/v1") else base


def redact_url(url: str) -> str:
    """The URL with its userinfo and every query value replaced by `***` (any of them may be a key)."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            netloc = "***@" + netloc.rsplit("@", 1)[1]
        query = parts.query
        if query:
            pairs = [(k, "***") for k, _ in parse_qsl(query, keep_blank_values=True)]
            query = urlencode(pairs, safe="*")
        return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    except ValueError:
        return "<invalid URL>"


def _shown(url: str) -> str:
    """A URL as messages show it: no userinfo; query values the caller named as secrets are
    scrubbed with the rest (syncd's own `?limit=1000` stays readable)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    netloc = "***@" + parts.netloc.rsplit("@", 1)[1] if "@" in parts.netloc else parts.netloc
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def origin(url: httpx.URL) -> tuple[str, str, int]:
    """(scheme, host, port) with the scheme's default port filled in."""
    return url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme, 0)


def _scrub(text: str, secrets: Iterable[str]) -> str:
    """One short line without any of `secrets`, its unsafe characters escaped (syncd.text)."""
    for secret in sorted(secrets, key=len, reverse=True):  # a key may contain another
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return one_line(text, _MAX_DETAIL)


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


async def _text(response: httpx.Response, limits: Limits, cap: int) -> AsyncIterator[str]:
    """The answer as text, decoded from one Content-Encoding layer, in pieces, up to `cap` bytes."""
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limits.max_body:
        raise BadResponse(f"response of {int(declared)} bytes is over the {limits.max_body}-byte limit")
    encodings = response.headers.get_list("content-encoding")
    if response.is_stream_consumed:  # built in memory (a MockTransport): httpx decoded it already
        encodings = []
    body = BodyDecoder(encodings, cap)
    utf8 = codecs.getincrementaldecoder("utf-8")()
    wire = 0
    try:
        async for raw in _wire(response):
            wire += len(raw)
            if wire > limits.max_body:
                raise BadResponse(f"response is over the {limits.max_body}-byte limit")
            for piece in body.feed(raw):
                yield utf8.decode(piece)
        for piece in body.finish():
            yield utf8.decode(piece)
        yield utf8.decode(b"", final=True)
    except UnicodeDecodeError:
        raise BadResponse("answered with text that is not UTF-8") from None


async def _wire(response: httpx.Response) -> AsyncIterator[bytes]:
    if response.is_stream_consumed:
        yield response.content
        return
    async for raw in response.aiter_raw():
        yield raw


async def _read_json(response: httpx.Response, limits: Limits) -> Any:
    reader = JsonStream(max_items=limits.max_models, budget=limits.max_memory)
    async for text in _text(response, limits, limits.max_body):
        reader.feed(text)
    return reader.finish()


async def _read_error(response: httpx.Response, limits: Limits) -> bytes:
    """The start of an error answer, enough for its message; the rest is never read."""
    pieces: list[str] = []
    size = 0
    try:
        async for text in _text(response, limits, _ERROR_BODY * 4):
            pieces.append(text)
            size += len(text)
            if size >= _ERROR_BODY:
                break
    except BadResponse:
        pass  # an error answer that cannot be decoded still has its status
    return "".join(pieces)[:_ERROR_BODY].encode("utf-8", "replace")


def _follow(url: httpx.URL, response: httpx.Response, where: str) -> httpx.URL:
    """Where a redirect within the origin points; one to another origin is an error."""
    location = response.headers.get("location", "")
    try:
        target = url.join(location)
    except httpx.InvalidURL:
        raise BadResponse(f"{where}: redirected to an invalid location") from None
    if origin(target) != origin(url):
        raise BadResponse(
            f"{where}: redirected to {redact_url(str(target))}, another origin; syncd sends "
            "credentials only where baseURL points, so it does not follow: point baseURL there "
            "if you trust it"
        )
    return target


def _cause(exc: BaseException) -> str | None:
    """The real reason behind a connection failure, when it is not the server being down."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            why = seen.verify_message or "not trusted"
            return (f"TLS certificate not trusted ({why}); give the server a certificate this "
                    "machine trusts, or point SSL_CERT_FILE at its CA")
        if isinstance(seen, ssl.SSLError):
            return (f"TLS handshake failed ({seen.reason or seen}); check that the URL's "
                    "scheme and port speak https")
        if isinstance(seen, OSError) and seen.errno in (errno.EMFILE, errno.ENFILE):
            return ("too many open files in syncd; raise its limit (`ulimit -n`, or "
                    "LimitNOFILE= in the service) or sync fewer providers at once")
        seen = seen.__cause__ or seen.__context__
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return ("TLS certificate not trusted; give the server a certificate this machine "
                "trusts, or point SSL_CERT_FILE at its CA")
    return None


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
    """Send one request (following redirects within its origin) and return the decoded JSON body.

    Every failure is a FetchError.
    """
    secrets = tuple(secrets)
    where = f"{method} {_scrub(_shown(url), secrets)}"
    target = httpx.URL(url) if _usable(url) else None
    if target is None:
        raise Unreachable(f"{where}: not a usable http(s) URL; check options.baseURL")
    started = False
    try:
        for _ in range(MAX_REDIRECTS + 1):
            async with client.stream(method, target, headers=headers, json=body,
                                     follow_redirects=False) as response:
                started = True
                status = response.status_code
                if status in _REDIRECTS and "location" in response.headers:
                    target = _follow(target, response, where)
                    if status == 303 or (status in (301, 302) and method == "POST"):
                        method, body = "GET", None
                    started = False
                    continue
                if 200 <= status < 300:
                    if "html" in response.headers.get("content-type", ""):
                        raise BadResponse("answered with an HTML page, not JSON; check the baseURL")
                    return _check_200(where, await _read_json(response, limits), secrets)
                raw = await _read_error(response, limits)
                _raise_status(where, status, raw, response.headers.get("retry-after"), secrets, now)
        raise BadResponse(f"{where}: more than {MAX_REDIRECTS} redirects; check options.baseURL")
    except FetchError as exc:
        if exc.reason.startswith(where):
            raise
        raise type(exc)(f"{where}: {_scrub(exc.reason, secrets)}") from None
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
    except (httpx.HTTPError, OSError) as exc:
        cause = _cause(exc)
        if cause is not None:
            error = FetchError if "open files" in cause else Unreachable
            raise error(f"{where}: {cause}") from None
        detail = _scrub(str(exc) or type(exc).__name__, secrets)
        raise Unreachable(f"{where}: cannot connect ({detail}); is the server running?") from None


def _usable(url: str) -> bool:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        return False
    return parsed.scheme in ("http", "https") and bool(parsed.host)


def _raise_status(
    where: str,
    status: int,
    raw: bytes,
    retry_header: str | None,
    secrets: tuple[str, ...],
    now: float | None,
) -> None:
    """Turn a status that is not 2xx into its FetchError."""
    detail = _scrub(_error_detail(raw), secrets)
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
        raise BadResponse(f"{where}: HTTP 404 not found; check the baseURL and its /v1-style prefix",
                          status=status)
    raise BadResponse(f"{where}: HTTP {status}{suffix}", status=status)


def _check_200(where: str, data: Any, secrets: tuple[str, ...]) -> Any:
    """A 2xx body that is an error message (`{"error": ...}` without a list) is an error."""
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
        raise BadResponse(f"{where}: {too_many(count, limits.max_models)}")
