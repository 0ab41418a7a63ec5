"""The `notify` settings block: which sinks to use and how each webhook URL wants its body.

Without a `format`, the URL decides: host `ntfy.sh`, or "ntfy" in the host and a single-segment
path → ntfy; `hooks.slack.com` → slack; `discord(app).com/api/webhooks/` → discord; else json.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from syncd.errors import SettingsError

COMMAND_TIMEOUT = 10.0


class WebhookFormat(StrEnum):
    JSON = "json"
    NTFY = "ntfy"
    SLACK = "slack"
    DISCORD = "discord"


_NTFY_TOPIC = re.compile(r"/[-_A-Za-z0-9]{1,64}/?")


def detect_format(url: str) -> WebhookFormat:
    """The body shape a webhook URL expects, from its host and path."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host == "ntfy.sh" or ("ntfy" in host and _NTFY_TOPIC.fullmatch(parts.path)):
        return WebhookFormat.NTFY
    if host == "hooks.slack.com":
        return WebhookFormat.SLACK
    if host in ("discord.com", "discordapp.com") and parts.path.startswith("/api/webhooks/"):
        return WebhookFormat.DISCORD
    return WebhookFormat.JSON


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    """One webhook: where to POST, and the payload shape it expects."""

    url: str
    format: WebhookFormat


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    """The `notify` settings block: which sinks hear about changes and failures."""

    desktop: bool = True
    webhooks: tuple[WebhookConfig, ...] = ()
    command: tuple[str, ...] | None = None
    command_timeout: float = COMMAND_TIMEOUT

    @classmethod
    def off(cls) -> NotifyConfig:
        """No sinks (`syncd once --no-notify`, `notify: false`): events are only logged."""
        return cls(desktop=False)

    @classmethod
    def from_settings(cls, raw: object) -> NotifyConfig:
        """Build from the value of the settings' `notify` key (None when absent)."""
        if raw is None or raw is True:
            return cls()
        if raw is False:
            return cls.off()
        if not isinstance(raw, Mapping):
            raise SettingsError("notify: expected an object, true or false")
        unknown = set(raw) - {"desktop", "webhook", "command", "command_timeout"}
        if unknown:
            raise SettingsError(f"notify.{sorted(unknown)[0]}: unknown key")
        desktop = raw.get("desktop", True)
        if not isinstance(desktop, bool):
            raise SettingsError("notify.desktop: expected true or false")
        timeout = raw.get("command_timeout", COMMAND_TIMEOUT)
        if (isinstance(timeout, bool) or not isinstance(timeout, int | float)
                or not 0 < timeout < math.inf):  # NaN fails too: json5 reads NaN and Infinity
            raise SettingsError("notify.command_timeout: expected a positive number of seconds")
        return cls(desktop, _webhooks(raw.get("webhook")), _command(raw.get("command")), timeout)


def _webhooks(raw: object) -> tuple[WebhookConfig, ...]:
    items = [] if raw is None else raw if isinstance(raw, list) else [raw]
    out = []
    for item in items:
        fmt: object = None
        if isinstance(item, Mapping):
            if set(item) - {"url", "format"}:
                raise SettingsError("notify.webhook: an entry has only `url` and `format`")
            url, fmt = item.get("url"), item.get("format")
        else:
            url = item
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
            raise SettingsError("notify.webhook: expected an http(s) URL")
        if fmt is not None and (not isinstance(fmt, str) or fmt not in set(WebhookFormat)):
            raise SettingsError("notify.webhook.format: expected json, ntfy, slack or discord")
        out.append(WebhookConfig(url, WebhookFormat(fmt) if fmt else detect_format(url)))
    return tuple(out)


def _command(raw: object) -> tuple[str, ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not raw or not all(isinstance(a, str) and a for a in raw):
        raise SettingsError('notify.command: expected an argv list, e.g. ["notify-me", "-q"]')
    return tuple(raw)
