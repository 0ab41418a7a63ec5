"""The upstream corpus (tests/fixtures/upstream): real bodies with provenance, and templates cut from them.

Each fixture file is `{"provenance": {...}, "routes": {"GET /path?query": {"status", "body"}, ...}}`;
a POST route may answer per request field: `{"by": "model", "answers": {"<model>": {"status", "body"}}}`.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

CORPUS = Path(__file__).resolve().parent / "fixtures" / "upstream"


@functools.cache
def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CORPUS / f"{name}.json").read_text(encoding="utf-8"))
    return data


def fixture(name: str) -> dict[str, Any]:
    """A fresh copy of one fixture, by its path under the corpus without `.json`."""
    return copy.deepcopy(_load(name))


def names() -> list[str]:
    """Every fixture of the corpus, as `server/scenario`."""
    return sorted(str(p.relative_to(CORPUS).with_suffix("")) for p in CORPUS.rglob("*.json"))


def body(name: str, route: str, answer: str | None = None) -> Any:
    """The body one route of a fixture answers (a POST route's answer for `answer`)."""
    entry = fixture(name)["routes"][route]
    if answer is not None:
        entry = entry["answers"][answer]
    return entry["body"]


def route_key(method: str, path: str, query: str = "") -> tuple[str, str, tuple[tuple[str, str], ...]]:
    """A request (or a fixture's route name) as something to compare: the query decoded and sorted."""
    return method.upper(), path, tuple(sorted(parse_qsl(query, keep_blank_values=True)))


def routes(name: str) -> dict[tuple[str, str, tuple[tuple[str, str], ...]], dict[str, Any]]:
    """A fixture's routes keyed for lookup by `route_key`."""
    out = {}
    for key, answer in fixture(name)["routes"].items():
        method, target = key.split(" ", 1)
        split = urlsplit(target)
        out[route_key(method, split.path, split.query)] = answer
    return out


def base_path(name: str) -> str:
    """Where a fixture's OpenAI-style API lives, read off its model-list route."""
    for key in fixture(name)["routes"]:
        path = urlsplit(key.split(" ", 1)[1]).path
        if path.endswith("/models") and not path.startswith(("/api/v0", "/api/v1/models")):
            return path.removesuffix("/models")
        if path == "/api/v1/models" and "openrouter" in name:
            return "/api/v1"
    return "/v1"


# --- templates: one real item of a fixture, to be filled in with a test's own models -------------


def ollama_tag(with_capabilities: bool) -> dict[str, Any]:
    """An /api/tags entry: the docs' (before 0.30), or 0.30's with capabilities and context_length."""
    if with_capabilities:
        return body("ollama/0.30-tags-with-capabilities", "GET /api/tags")["models"][0]
    return body("ollama/0.12-tags-and-show", "GET /api/tags")["models"][0]


def ollama_show() -> dict[str, Any]:
    """docs/openapi.yaml's /api/show example (gemma4; parameters with `num_ctx 2048`)."""
    return body("ollama/0.12-tags-and-show", "POST /api/show", "deepseek-r1:latest")


def ollama_ps_entry() -> dict[str, Any]:
    return body("ollama/0.30-tags-with-capabilities", "GET /api/ps")["models"][0]


def ollama_version() -> dict[str, Any]:
    return body("ollama/0.12-tags-and-show", "GET /api/version")


def lmstudio_v1(embedding: bool) -> dict[str, Any]:
    """The docs' loaded LLM entry (gemma, with a loaded instance), or its embedding entry."""
    return body("lmstudio/0.4-v1-loaded", "GET /api/v1/models")["models"][2 if embedding else 0]


def lmstudio_v0() -> dict[str, Any]:
    return body("lmstudio/0.3-v0", "GET /api/v0/models")["data"][1]


def lmstudio_unexpected(path: str) -> dict[str, Any]:
    """What LM Studio 0.3 answers (HTTP 200) for an endpoint it lacks."""
    return {"error": f"Unexpected endpoint or method. (GET {path})"}


def llamacpp_single() -> tuple[dict[str, Any], dict[str, Any]]:
    """A single-model llama-server's /v1/models and /props, as the real binary answered."""
    return (body("llamacpp/single", "GET /v1/models"), body("llamacpp/single", "GET /props"))


def llamacpp_router(loaded: bool) -> dict[str, Any]:
    """A router entry (`-c 4096`): tiny-a loaded (with meta) or unloaded (without)."""
    return body("llamacpp/router-ctx-loaded", "GET /v1/models")["data"][0 if loaded else 1]


def openai_item() -> dict[str, Any]:
    return body("openai/models", "GET /v1/models")["data"][0]


def vllm_item() -> dict[str, Any]:
    return body("vllm/lora", "GET /v1/models")["data"][0]


def openrouter_item() -> dict[str, Any]:
    return body("openrouter/models", "GET /api/v1/models")["data"][1]


def litellm_item() -> dict[str, Any]:
    return body("litellm/1.108.7-proxy", "GET /v1/models")["data"][0]


def litellm_info() -> dict[str, Any]:
    return body("litellm/1.108.7-proxy", "GET /model/info")["data"][0]


def anthropic_item() -> dict[str, Any]:
    page = body("anthropic/models-paged", "GET /v1/models?after_id=claude-opus-4-6&limit=1000")
    return page["data"][0]


def gemini_item() -> dict[str, Any]:
    return body("gemini/models-paged", "GET /v1beta/models?pageSize=1000")["models"][0]
