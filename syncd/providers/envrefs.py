"""The environment variables a custom provider block reads: `{env:VAR}` in its options, a one-name `env`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from syncd.providers.blocks import custom_providers

_ENV = re.compile(r"\{env:([^}]+)\}")


@dataclass(frozen=True, slots=True)
class EnvUse:
    """One variable one provider of one target reads, and where (e.g. `options.apiKey`)."""

    var: str
    provider: str
    where: str
    target: Path

    def describe(self) -> str:
        return f"provider.{self.provider}.{self.where} in {self.target}"


def env_uses(target: Path, data: Any, auth: Mapping[str, Any]) -> list[EnvUse]:
    """Every variable syncd resolves for `target`'s custom providers (what OpenCode resolves too)."""
    out: list[EnvUse] = []
    for pid, block in custom_providers(data).items():
        options = block["options"]
        values = [(f"options.{k}", options.get(k)) for k in ("baseURL", "apiKey")]
        headers = options.get("headers")
        if isinstance(headers, Mapping):
            values += [(f"options.headers.{k}", v) for k, v in headers.items()]
        for where, value in values:
            if isinstance(value, str):
                out += [EnvUse(m.group(1), pid, where, target) for m in _ENV.finditer(value)]
        entry = auth.get(pid)
        has_auth = isinstance(entry, Mapping) and entry.get("type") == "api"
        env = block.get("env")
        # OpenCode reads a one-name `env` only when neither options.apiKey nor auth.json gives a key
        if not isinstance(options.get("apiKey"), str) and not has_auth and isinstance(env, list) \
                and len(env) == 1 and isinstance(env[0], str):
            out.append(EnvUse(env[0], pid, "env", target))
    return out
