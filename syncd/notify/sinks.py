"""Delivers event batches to the sinks (desktop, webhooks, a command) without ever failing a cycle.

Settings, the `notify` block (DESIGN §5.1), all optional: `desktop: true` (notify-send or
osascript; off on a headless box), `webhook: URL | {url, format} | [...]`, `command: [argv...]`
(no shell; the batch as JSON on stdin), `command_timeout: 10` (seconds); `notify: false` turns
every sink off (events are still logged). A webhook `format` is `json` (the batch), `ntfy`
(plain-text body; Title, Tags, Priority headers), `slack` (`{"text"}`) or `discord`
(`{"content"}`); without one the URL decides: host `ntfy.sh`, or "ntfy" in the host and a
single-segment path → ntfy; `hooks.slack.com` → slack; `discord(app).com/api/webhooks/` → discord;
anything else → json.

Not blocking the daemon: `Notifier.notify()` logs and rate-limits at once, then awaits every sink
concurrently, each bounded by its own timeout, so it returns within about `max_wait` seconds.
A loop that must not wait at all calls `submit()`, which does the logging and rate limiting
synchronously and delivers in a background task; `aclose()` waits (bounded) for those at shutdown.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
import structlog

from syncd.notify.config import (  # noqa: F401  (re-exported: the notify API)
    COMMAND_TIMEOUT,
    NotifyConfig,
    WebhookConfig,
    WebhookFormat,
    detect_format,
)
from syncd.notify.events import Batch, Event, RateLimiter, Severity, batch_events

SINK_TIMEOUT = 5.0  # desktop and webhook
_MARGIN = 1.0  # seconds a sink may overrun its own timeout before the Notifier gives up on it


class Sink(Protocol):
    name: str
    timeout: float

    async def send(self, batch: Batch) -> None: ...


class SinkUnavailable(Exception):
    """The sink cannot work on this machine (no notification server): turn it off, say so once."""


_OSASCRIPT = (
    "on run argv",
    "display notification (item 1 of argv) with title (item 2 of argv)",
    "end run",
)
_URGENCY = {Severity.INFO: "low", Severity.WARNING: "normal", Severity.ERROR: "critical"}


async def _run(argv: Sequence[str], stdin: bytes | None, timeout: float) -> tuple[int, str]:
    """Run argv (never a shell) with a deadline; the whole process group dies on timeout."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        _, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except (TimeoutError, asyncio.CancelledError):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        raise
    lines = err.decode("utf-8", "replace").strip().splitlines()
    return (proc.returncode or 0, lines[-1][:200] if lines else "")


class DesktopSink:
    """notify-send on Linux, osascript on macOS; the text always travels as argv, never as code."""

    name = "desktop"
    timeout = SINK_TIMEOUT

    def __init__(self, *, platform: str | None = None, environ: Mapping[str, str] | None = None):
        self._platform = platform or sys.platform
        self._env = os.environ if environ is None else environ
        self._argv0: str | None = None
        self.off_reason: str | None = None

    def probe(self) -> bool:
        """Whether this machine can show notifications; sets `off_reason` when not."""
        path = self._env.get("PATH")
        if self._platform == "darwin":
            self._argv0 = shutil.which("osascript", path=path)
            if not self._argv0:
                self.off_reason = "osascript not found"
        else:
            self._argv0 = shutil.which("notify-send", path=path)
            runtime = self._env.get("XDG_RUNTIME_DIR")
            bus = self._env.get("DBUS_SESSION_BUS_ADDRESS") or (
                runtime and Path(runtime, "bus").exists()
            )
            if not self._argv0:
                self.off_reason = "notify-send not found"
            elif not bus:
                self.off_reason = "no session bus"
        return self.off_reason is None

    def argv(self, batch: Batch) -> list[str]:
        assert self._argv0, "probe() first"
        if self._platform == "darwin":
            script = [a for line in _OSASCRIPT for a in ("-e", line)]
            return [self._argv0, *script, batch.body, batch.title]
        # "--" so a title or body that starts with "-" is never read as an option
        opts = ["--app-name=syncd", f"--urgency={_URGENCY[batch.severity]}", "--"]
        return [self._argv0, *opts, batch.title, batch.body]

    async def send(self, batch: Batch) -> None:
        code, err = await _run(self.argv(batch), None, self.timeout)
        if code:
            # no notification server behind the bus is the usual cause: one line, then quiet
            raise SinkUnavailable(f"{Path(self.argv(batch)[0]).name} exited {code}: {err}")


def _rfc2047(text: str) -> str:
    """Header values must be ASCII; ntfy decodes RFC 2047 encoded-words."""
    clean = " ".join(text.split())
    if clean.isascii():
        return clean
    return "=?UTF-8?B?" + base64.b64encode(clean.encode()).decode("ascii") + "?="


_NTFY_PRIORITY = {Severity.INFO: "default", Severity.WARNING: "default", Severity.ERROR: "high"}
_NTFY_TAG = {Severity.INFO: "arrows_counterclockwise", Severity.WARNING: "warning"}


def webhook_request(hook: WebhookConfig, batch: Batch) -> tuple[dict[str, str], bytes]:
    """Headers and body of one webhook POST."""
    if hook.format is WebhookFormat.NTFY:
        tags = [_NTFY_TAG.get(batch.severity, "rotating_light"), "syncd"]
        headers = {
            "Title": _rfc2047(batch.title),
            "Tags": ",".join(tags),
            "Priority": _NTFY_PRIORITY[batch.severity],
            "Content-Type": "text/plain; charset=utf-8",
        }
        return headers, batch.body.encode()
    text = f"{batch.title}\n{batch.body}"
    payload: Any
    if hook.format is WebhookFormat.SLACK:
        payload = {"text": text}
    elif hook.format is WebhookFormat.DISCORD:
        payload = {"content": text[:2000]}  # Discord refuses longer messages
    else:
        payload = batch.to_json()
    return {"Content-Type": "application/json"}, json.dumps(payload).encode()


class WebhookSink:
    name: str
    timeout = SINK_TIMEOUT

    def __init__(self, hook: WebhookConfig, client: httpx.AsyncClient) -> None:
        self._hook = hook
        self._client = client
        # webhook URLs often carry their secret in the path: name the host only
        self.name = f"webhook:{urlsplit(hook.url).hostname}"

    async def send(self, batch: Batch) -> None:
        headers, body = webhook_request(self._hook, batch)
        try:
            resp = await self._client.post(
                self._hook.url, content=body, headers=headers, timeout=self.timeout
            )
        except httpx.HTTPError as e:
            raise RuntimeError(f"{type(e).__name__}") from None  # str(e) may repeat the URL
        if resp.status_code >= 400:
            raise RuntimeError(f"HTTP {resp.status_code}")


class CommandSink:
    """Runs the configured argv with the batch as JSON on stdin."""

    name = "command"

    def __init__(self, argv: Sequence[str], timeout: float = COMMAND_TIMEOUT) -> None:
        self.argv = tuple(argv)
        self.timeout = timeout

    async def send(self, batch: Batch) -> None:
        data = json.dumps(batch.to_json()).encode()
        try:
            code, err = await _run(self.argv, data, self.timeout)
        except TimeoutError:
            raise RuntimeError(f"{self.argv[0]} timed out after {self.timeout:g}s") from None
        if code:
            raise RuntimeError(f"{self.argv[0]} exited {code}: {err}")


@dataclass(frozen=True, slots=True)
class _Log:
    """Either a structlog-style logger (`log.info(event, **kw)`) or a callable(level, event, kw)."""

    logger: Any

    def __call__(self, level: str, event: str, **fields: object) -> None:
        method = getattr(self.logger, level, None)
        if callable(method):
            method(event, **fields)
        elif callable(self.logger):
            self.logger(level, event, fields)


_LEVEL = {Severity.INFO: "info", Severity.WARNING: "warning", Severity.ERROR: "error"}


class Notifier:
    """Logs every event, rate-limits, and fans each target's batch out to every sink at once."""

    def __init__(
        self,
        config: NotifyConfig,
        *,
        client: httpx.AsyncClient | None = None,
        logger: object | None = None,
        sinks: Iterable[Sink] | None = None,
        limiter: RateLimiter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = _Log(logger if logger is not None else structlog.get_logger("syncd.notify"))
        self._limiter = limiter or RateLimiter()
        self._clock = clock
        self._own_client = client is None and bool(config.webhooks)
        self._client = client or (httpx.AsyncClient() if config.webhooks else None)
        self._tasks: set[asyncio.Task[None]] = set()
        self.sinks: list[Sink] = list(sinks) if sinks is not None else self._build(config)

    def _build(self, config: NotifyConfig) -> list[Sink]:
        sinks: list[Sink] = []
        if config.desktop:
            desktop = DesktopSink()
            if desktop.probe():
                sinks.append(desktop)
            else:
                self._log("info", "notify.desktop_off", reason=desktop.off_reason)
        if self._client is not None:
            sinks.extend(WebhookSink(h, self._client) for h in config.webhooks)
        if config.command:
            sinks.append(CommandSink(config.command, config.command_timeout))
        return sinks

    @property
    def max_wait(self) -> float:
        """Longest `notify()` can take: the slowest sink's timeout plus a margin."""
        return max((s.timeout for s in self.sinks), default=0.0) + _MARGIN

    def prepare(self, events: Sequence[Event]) -> list[Batch]:
        """Log every event and return the batches that pass the rate limiter (no I/O but logs)."""
        now = self._clock()
        for e in events:
            fields = {k: v for k, v in e.to_json().items() if k != "type"}
            self._log(_LEVEL[e.severity], f"event.{e.type.value}", **fields)
        passed = [e for e in events if self._limiter.allow(e, now)] + self._limiter.due(now)
        return batch_events(passed)

    async def notify(self, events: Sequence[Event]) -> None:
        """Log, rate-limit and deliver; returns within `max_wait`; never raises for a sink."""
        await self._deliver(self.prepare(events))

    def submit(self, events: Sequence[Event]) -> None:
        """Like notify() but delivery runs in the background; needs a running event loop."""
        batches = self.prepare(events)
        if batches and self.sinks:
            task = asyncio.get_running_loop().create_task(self._deliver(batches))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        """Wait (bounded) for background deliveries, then close the HTTP client if ours."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=self.max_wait)
            for task in self._tasks:
                task.cancel()
        if self._own_client and self._client is not None:
            await self._client.aclose()

    async def _deliver(self, batches: Sequence[Batch]) -> None:
        jobs = [self._send(s, b) for b in batches for s in list(self.sinks)]
        await asyncio.gather(*jobs)

    async def _send(self, sink: Sink, batch: Batch) -> None:
        try:
            await asyncio.wait_for(sink.send(batch), sink.timeout + _MARGIN)
            self._log("debug", "notify.sent", sink=sink.name, target=batch.target)
        except SinkUnavailable as e:
            if sink in self.sinks:
                self.sinks.remove(sink)
                self._log("info", "notify.sink_off", sink=sink.name, reason=str(e))
        except Exception as e:  # a sink must never break a cycle; TimeoutError's str() is ""
            self._log("warning", "notify.sink_failed", sink=sink.name, error=str(e) or repr(e))
