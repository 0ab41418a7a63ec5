"""Set up structlog (console lines on a terminal, JSON lines otherwise) with secrets scrubbed."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from syncd.text import escape

FORMATS = ("auto", "json", "console")
MASK = "***"
_MIN_SECRET_LEN = 4  # shorter values would mask ordinary words in every line
_SECRET_WORDS = ("apikey", "authorization", "password", "passwd", "secret", "cookie")
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][\w+.-]*://)(?P<user>[^/\s:@]*):[^/\s@]*@")
_BEARER = re.compile(r"\b(Bearer|Basic)\s+[^\s\"',]+", re.IGNORECASE)
_KEY_VALUE = re.compile(
    r"(?P<k>\b(?:api[_-]?key|apikey|token|access_token|password|authorization)\b[\"']?\s*[=:]\s*[\"']?)"
    r"(?P<v>[^\s\"',&}]+)",
    re.IGNORECASE,
)

_secrets: set[str] = set()
_secrets_lock = threading.Lock()
_handler: logging.Handler | None = None


def register_secret(value: str | None) -> None:
    """Scrub this exact value (a resolved API key, say) from every log line from now on."""
    if value and len(value) >= _MIN_SECRET_LEN:
        with _secrets_lock:
            _secrets.add(value)


def is_secret_key(key: str) -> bool:
    """Whether a field named `key` holds a secret: api_key, apiKey, X-Api-Key, token, password..."""
    norm = re.sub(r"[^a-z]", "", key.lower())
    if norm in ("key", "auth") or norm.endswith("token"):
        return True
    return any(w in norm for w in _SECRET_WORDS)


def scrub(text: str) -> str:
    """`text` with registered secrets, URL passwords, bearer tokens and key=value secrets masked."""
    with _secrets_lock:
        known = sorted(_secrets, key=len, reverse=True)  # longest first: a key may contain another
    for secret in known:
        if secret in text:
            text = text.replace(secret, MASK)
    text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    text = _BEARER.sub(lambda m: f"{m[1]} {MASK}", text)
    return _KEY_VALUE.sub(lambda m: f"{m['k']}{MASK}", text)


def redact_value(value: Any, key: str = "") -> Any:
    """`value` fit for a log line: secrets masked, unsafe characters (syncd.text) escaped; a
    traceback keeps its line breaks."""
    if key and is_secret_key(key) and value not in (None, "", False):
        return MASK
    if isinstance(value, str):
        return escape(scrub(value), keep="\n" if key == "exception" else "")
    if isinstance(value, MutableMapping | dict):
        return {k: redact_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(v) for v in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return escape(scrub(str(value)))  # paths, enums, exceptions: their text may carry a key


def redact(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: the last one before rendering, so tracebacks are scrubbed too."""
    return {k: redact_value(v, k) for k, v in event_dict.items()}


def _level(verbosity: int) -> int:
    if verbosity >= 1:
        return logging.DEBUG
    return {0: logging.INFO, -1: logging.WARNING, -2: logging.ERROR}.get(verbosity, logging.CRITICAL)


def _renderer(fmt: str, stream: TextIO) -> Processor:
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    tty = bool(getattr(stream, "isatty", lambda: False)())
    if fmt == "json" or (fmt == "auto" and not tty):
        return structlog.processors.JSONRenderer(sort_keys=False)
    # plain_traceback: the pretty formatters (rich, better_exceptions) print locals, i.e. keys.
    return structlog.dev.ConsoleRenderer(
        colors=tty, exception_formatter=structlog.dev.plain_traceback
    )


def configure_logging(fmt: str, verbosity: int, stream: TextIO) -> None:
    """Route syncd's structlog calls and third-party stdlib logging to `stream`, one line per event.

    `fmt` is auto|json|console (auto: console on a terminal, JSON otherwise); `verbosity` is
    the count of -v minus the count of -q. Safe to call again (tests, SIGHUP).
    """
    global _handler
    level = _level(verbosity)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,  # plain text, never locals
        redact,
    ]
    renderer = _renderer(fmt, stream)
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.WriteLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    # watchfiles and httpx log through the stdlib: same format, same scrubbing.
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    _handler = logging.StreamHandler(stream)
    _handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root.addHandler(_handler)
    root.setLevel(level)
    chatty = logging.DEBUG if verbosity >= 2 else logging.WARNING  # their INFO is per-request noise
    for name in ("watchfiles", "httpx", "httpcore", "asyncio"):
        logging.getLogger(name).setLevel(chatty)
