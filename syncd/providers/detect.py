"""Finds local runtimes (Ollama, LM Studio, llama.cpp) on this machine and renders their provider blocks."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from syncd import jsonc
from syncd.errors import FetchError, TargetError
from syncd.model import Kind, Limits
from syncd.providers.blocks import custom_providers, host_port
from syncd.providers.credentials import resolve
from syncd.providers.discover import probe_matches
from syncd.providers.fetch import request_json

PROBE_BUDGET = 0.3  # seconds for all probes together (DESIGN §4.9)
SCHEMA_URL = "https://opencode.ai/config.json"


@dataclass(frozen=True, slots=True)
class Runtime:
    kind: Kind
    provider_id: str
    name: str
    base_url: str
    probe: str  # path under the root that answers in this runtime's own shape

    @property
    def root(self) -> str:
        return self.base_url.removesuffix("/v1")


RUNTIMES = (
    Runtime(Kind.OLLAMA, "ollama", "Ollama (local)", "http://127.0.0.1:11434/v1", "/api/version"),
    Runtime(Kind.LMSTUDIO, "lmstudio", "LM Studio (local)", "http://127.0.0.1:1234/v1",
            "/api/v0/models"),
    Runtime(Kind.LLAMACPP, "llamacpp", "llama.cpp (local)", "http://127.0.0.1:8080/v1", "/props"),
)


def runtimes_from_env(env: Mapping[str, str] | None = None) -> tuple[Runtime, ...]:
    """RUNTIMES, with ports from `SYNCD_DETECT_PORTS` ("OLLAMA,LMSTUDIO,LLAMACPP", 0 = off) when set.

    Only tests set it: the fixed ports may be busy or unavailable where they run.
    """
    raw = (os.environ if env is None else env).get("SYNCD_DETECT_PORTS", "").strip()
    if not raw:
        return RUNTIMES
    ports = [p.strip() for p in raw.split(",")]
    out = []
    for rt, port in zip(RUNTIMES, ports, strict=False):
        if port.isdigit() and int(port) > 0:  # "0" leaves that runtime out
            url = f"http://127.0.0.1:{int(port)}/v1"
            out.append(Runtime(rt.kind, rt.provider_id, rt.name, url, rt.probe))
    return tuple(out)


async def probe_runtimes(
    client: httpx.AsyncClient, runtimes: Iterable[Runtime] | None = None,
    budget: float | None = None,
) -> list[Runtime]:
    """The runtimes that answer within `budget`, in the order given (default: runtimes_from_env()).

    The default budget is PROBE_BUDGET, or `SYNCD_DETECT_BUDGET` seconds when set: only tests
    set it, so that a loaded machine cannot make a fake runtime miss 300 ms.
    """
    if budget is None:
        raw = os.environ.get("SYNCD_DETECT_BUDGET", "")
        budget = float(raw) if raw.replace(".", "", 1).isdigit() else PROBE_BUDGET
    limits = Limits(connect=budget, read=budget, total=budget, max_body=1 << 20)
    runtimes = list(runtimes_from_env() if runtimes is None else runtimes)

    async def one(rt: Runtime) -> bool:
        try:
            async with asyncio.timeout(budget):
                return probe_matches(rt.kind, await request_json(client, rt.root + rt.probe,
                                                                 limits=limits))
        except (FetchError, TimeoutError):
            return False

    found = await asyncio.gather(*(one(rt) for rt in runtimes))
    return [rt for rt, ok in zip(runtimes, found, strict=True) if ok]


def claimed_hosts(configs: Iterable[tuple[Path, object]]) -> set[tuple[str, int] | None]:
    """(host, port) of every custom provider of `configs` (path, data), `{env:}` resolved."""
    out: set[tuple[str, int] | None] = set()
    for path, data in configs:
        for block in custom_providers(data).values():
            raw = block["options"]["baseURL"]
            try:
                url = resolve(raw, path.parent, config_path=path)
            except TargetError:
                url = raw
            out.add(host_port(url))
    return out


def unclaimed(runtimes: Iterable[Runtime], configs: Iterable[tuple[Path, object]]) -> list[Runtime]:
    """The runtimes no provider of any of `configs` points at (same host and port)."""
    claimed = claimed_hosts(configs)
    return [rt for rt in runtimes if host_port(rt.base_url) not in claimed]


def free_id(wanted: str, config: object) -> str:
    """`wanted`, or `wanted-local`, `wanted-2`, … when a provider already has that id."""
    taken = set()
    if isinstance(config, Mapping) and isinstance(config.get("provider"), Mapping):
        taken = set(config["provider"])
    for candidate in (wanted, f"{wanted}-local", *(f"{wanted}-{n}" for n in range(2, 100))):
        if candidate not in taken:
            return candidate
    raise ValueError(f"no free provider id for {wanted}")


def provider_block(name: str, base_url: str, key_env: str | None = None) -> dict[str, Any]:
    """A block as OpenCode's docs show it; syncd fills `models` on the next cycle."""
    options: dict[str, Any] = {"baseURL": base_url}
    if key_env:
        options["apiKey"] = "{env:" + key_env + "}"
    return {"npm": "@ai-sdk/openai-compatible", "name": name, "options": options, "models": {}}


def add_blocks(text: str, blocks: Mapping[str, Mapping[str, Any]]) -> str:
    """The target text with new provider blocks appended; a missing or empty file is created."""
    if not text.strip():
        text = '{\n  "$schema": "' + SCHEMA_URL + '"\n}\n'
    data = jsonc.parse(text)
    if not isinstance(data, Mapping) or not isinstance(data.get("provider"), Mapping):
        return jsonc.modify(text, ["provider"], dict(blocks))
    return jsonc.modify_many(text, [(("provider", pid), block) for pid, block in blocks.items()])
