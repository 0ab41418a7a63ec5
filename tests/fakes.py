"""Fake provider servers on 127.0.0.1 speaking each kind's documented shapes, with fault modes, for tests.

Fixtures (import them into conftest.py, or `from tests.fakes import fake_provider`):
    fake_provider   factory: fake_provider(kind, models=None, **kw) -> FakeProvider; all closed at teardown
    fake_ollama, fake_lmstudio, fake_llamacpp, fake_openai, fake_anthropic, fake_gemini
                    one running server of that kind with its default models

A FakeProvider's state is plain attributes, changed between cycles: `models` (simple dicts, see
`default_models`), `fault` (None | "hang" | "slow" | "500" | "html" | "truncated" | "error200" |
"401" | "429" | "huge" | "null"), `fault_paths` (None = every path, else path prefixes the fault
applies to), `retry_after`, `delay` (seconds before every answer), `page_size` (Anthropic/Gemini
pagination), `variant` ("litellm" | "openrouter" | "vllm" for openai; "legacy" for an LM Studio
without /api/v1; "tags_caps" for an Ollama whose /api/tags carries `capabilities`), `api_key`.
`requests` records every request received (method, path, headers, body).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

FAULTS = (None, "hang", "slow", "500", "html", "truncated", "error200", "401", "429", "huge", "null")
KINDS = ("ollama", "lmstudio", "llamacpp", "openai", "anthropic", "gemini")
HUGE_BYTES = 40 * 1024 * 1024


@dataclass(frozen=True)
class Received:
    method: str
    path: str  # with the query string
    headers: dict[str, str]  # lower-case names
    body: bytes


def default_models(kind: str) -> list[dict[str, Any]]:
    """A small, varied list per kind: a tool-capable chat model, a vision model, an embedding model."""
    if kind == "ollama":
        return [
            {"id": "qwen3-coder:30b", "context": 262144, "num_ctx": 65536, "tools": True,
             "arch": "qwen3moe"},
            {"id": "gemma3:4b", "context": 131072, "vision": True, "arch": "gemma3"},
            {"id": "nomic-embed-text:latest", "context": 2048, "embedding": True,
             "arch": "nomic-bert"},
        ]
    if kind == "anthropic":
        return [{"id": "claude-sonnet-4-5", "name": "Claude Sonnet 4.5"},
                {"id": "claude-haiku-4-5", "name": "Claude Haiku 4.5"},
                {"id": "claude-opus-4-1", "name": "Claude Opus 4.1"}]
    if kind == "gemini":
        return [{"id": "gemini-2.5-flash", "name": "Gemini 2.5 Flash", "context": 1048576,
                 "output": 65536, "reasoning": True},
                {"id": "gemini-2.5-pro", "name": "Gemini 2.5 Pro", "context": 1048576,
                 "output": 65536, "reasoning": True},
                {"id": "text-embedding-004", "name": "Text Embedding 004", "context": 2048,
                 "output": 1, "embedding": True}]
    return [
        {"id": "qwen/qwen3-coder-30b", "name": "Qwen3 Coder 30B", "context": 262144,
         "output": 65536, "tools": True, "cost_in": 0.2, "cost_out": 0.8},
        {"id": "google/gemma-3-12b", "name": "Gemma 3 12B", "context": 131072, "output": 8192,
         "vision": True, "reasoning": False},
        {"id": "text-embedding-nomic-embed-text-v1.5", "context": 2048, "embedding": True},
    ]


def digest_of(model: dict[str, Any]) -> str:
    return str(model.get("digest") or hashlib.sha256(model["id"].encode()).hexdigest())


def _caps(m: dict[str, Any]) -> list[str]:
    caps = ["embedding"] if m.get("embedding") else ["completion"]
    caps += [c for c, k in (("tools", "tools"), ("vision", "vision"), ("thinking", "reasoning"))
             if m.get(k)]
    return caps


def _openai_item(m: dict[str, Any], variant: str | None, owner: str) -> dict[str, Any]:
    item: dict[str, Any] = {"id": m["id"], "object": "model", "created": 1735689600,
                            "owned_by": owner}
    if variant == "vllm":
        item.update(owned_by="vllm", root=m["id"], parent=None,
                    max_model_len=m.get("context"), permission=[])
    elif variant == "openrouter":
        inputs = ["text", "image"] if m.get("vision") else ["text"]
        params = ["max_tokens", "temperature"] + (["tools", "tool_choice"] if m.get("tools") else [])
        params += ["reasoning", "include_reasoning"] if m.get("reasoning") else []
        item = {"id": m["id"], "canonical_slug": m["id"], "name": m.get("name", m["id"]),
                "created": 1735689600, "description": "", "context_length": m.get("context"),
                "architecture": {"modality": "+".join(inputs) + "->text", "input_modalities": inputs,
                                 "output_modalities": ["text"], "tokenizer": "Other"},
                "pricing": {"prompt": f"{m.get('cost_in', 0) / 1e6:.10f}",
                            "completion": f"{m.get('cost_out', 0) / 1e6:.10f}",
                            "request": "0", "image": "0"},
                "top_provider": {"context_length": m.get("context"),
                                 "max_completion_tokens": m.get("output"), "is_moderated": False},
                "per_request_limits": None, "supported_parameters": params}
    elif variant == "litellm":
        item["owned_by"] = "openai"
        if m.get("embedding"):
            item["mode"] = "embedding"
    item.update(m.get("extra", {}))
    return item


class _Server(ThreadingHTTPServer):
    # real runtimes listen with a deep backlog (Go: 4096); socketserver's default of 5 drops SYNs
    # when syncd opens a hundred connections at once, and the client then waits out SYN retries
    request_queue_size = 1024


class FakeProvider:
    """One loopback server speaking one kind's shapes; see the module docstring for its knobs."""

    def __init__(self, kind: str, models: list[dict[str, Any]] | None = None, *,
                 api_key: str | None = None, variant: str | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}")
        self.kind = kind
        self.variant = variant
        self.models: list[dict[str, Any]] = list(default_models(kind) if models is None else models)
        self.api_key = api_key
        self.fault: str | None = None
        self.fault_paths: tuple[str, ...] | None = None
        self.retry_after = 7
        self.delay = 0.0
        self.page_size = 1000
        self.requests: list[Received] = []
        self._closing = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True,
                                        name=f"fake-{kind}-{self.port}")
        self._thread.start()

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        if self.kind == "gemini":
            return self.root + "/v1beta"
        if self.variant == "openrouter":
            return self.root + "/api/v1"
        return self.root + "/v1"

    def paths(self) -> list[str]:
        return [r.path.split("?", 1)[0] for r in self.requests]

    def close(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- routing ----------------------------------------------------------------------------
    def authorised(self, headers: dict[str, str], query: dict[str, list[str]]) -> bool:
        if self.kind == "anthropic":
            if "anthropic-version" not in headers:
                return False
            return self.api_key is None or headers.get("x-api-key") == self.api_key
        if self.api_key is None:
            return True
        if self.kind == "gemini":
            return self.api_key in (headers.get("x-goog-api-key"), query.get("key", [None])[0])
        return headers.get("authorization") == f"Bearer {self.api_key}"

    def route(self, method: str, path: str, query: dict[str, list[str]],
              body: bytes) -> tuple[int, Any]:
        k, v = self.kind, self.variant
        if k == "ollama":
            if path == "/api/tags":
                return 200, {"models": [self._tag(m) for m in self.models]}
            if path == "/api/show" and method == "POST":
                return self._show(body)
            if path == "/api/version":
                return 200, {"version": "0.12.6"}
        if k == "lmstudio":
            if path == "/api/v1/models" and v != "legacy":
                return 200, {"models": [self._lms_v1(m) for m in self.models]}
            if path == "/api/v0/models":
                return 200, {"object": "list", "data": [self._lms_v0(m) for m in self.models]}
        if k == "llamacpp" and path == "/props":
            return 200, self._props()
        if k == "openai" and v == "litellm" and path in ("/model/info", "/v1/model/info"):
            return 200, {"data": [self._litellm_info(m) for m in self.models]}
        if k == "anthropic" and path == "/v1/models":
            return self._page_anthropic(query)
        if k == "gemini" and path == "/v1beta/models":
            return self._page_gemini(query)
        if path == "/v1/models" or (v == "openrouter" and path == "/api/v1/models"):
            if k in ("anthropic", "gemini"):
                return 404, {"error": "not found"}
            owner = {"ollama": "library", "llamacpp": "llamacpp", "lmstudio": "organization_owner"}
            items = [_openai_item(m, v, owner.get(k, "system")) for m in self.models]
            if k == "llamacpp":
                for item, m in zip(items, self.models, strict=True):
                    item["meta"] = {"vocab_type": 2, "n_vocab": 151936,
                                    "n_ctx_train": m.get("context"), "n_embd": 4096,
                                    "n_params": 7_000_000_000, "size": 4_000_000_000}
            return 200, {"object": "list", "data": items}
        return 404, {"error": f"no route for {path}"}

    def _tag(self, m: dict[str, Any]) -> dict[str, Any]:
        arch = m.get("arch", "llama")
        tag: dict[str, Any] = {
            "name": m["id"], "model": m["id"], "modified_at": "2025-10-01T12:00:00Z",
            "size": 4_000_000_000, "digest": digest_of(m),
            "details": {"parent_model": "", "format": "gguf", "family": arch, "families": [arch],
                        "parameter_size": "7B", "quantization_level": "Q4_K_M"}}
        if self.variant == "tags_caps":
            tag["capabilities"] = _caps(m)
        return tag

    def _show(self, body: bytes) -> tuple[int, Any]:
        try:
            name = json.loads(body).get("model") or json.loads(body).get("name")
        except ValueError:
            return 400, {"error": "invalid JSON"}
        m = next((m for m in self.models if m["id"] == name), None)
        if m is None:
            return 404, {"error": f"model '{name}' not found"}
        arch = m.get("arch", "llama")
        params = 'stop "<|im_end|>"'
        if m.get("num_ctx"):
            params = f"num_ctx {m['num_ctx']}\n" + params
        info = {"general.architecture": arch, "general.parameter_count": 7_000_000_000}
        if m.get("context"):
            info[f"{arch}.context_length"] = m["context"]
        return 200, {"license": "", "modelfile": f"FROM {m['id']}\n", "parameters": params,
                     "template": "{{ .Prompt }}", "details": self._tag(m)["details"],
                     "model_info": info, "capabilities": _caps(m),
                     "modified_at": "2025-10-01T12:00:00Z"}

    def _lms_v1(self, m: dict[str, Any]) -> dict[str, Any]:
        loaded = m.get("loaded_context")
        return {"type": "embedding" if m.get("embedding") else "llm", "publisher": "lmstudio-community",
                "key": m["id"], "display_name": m.get("name", m["id"]), "architecture": "qwen3",
                "quantization": {"name": "Q4_K_M", "bits_per_weight": 4},
                "size_bytes": 4_000_000_000, "params_string": "7B",
                "loaded_instances": [{"id": m["id"], "config": {"context_length": loaded}}]
                if loaded else [],
                "max_context_length": m.get("context"), "format": "gguf",
                "capabilities": {"vision": bool(m.get("vision")),
                                 "trained_for_tool_use": bool(m.get("tools"))},
                "description": None}

    def _lms_v0(self, m: dict[str, Any]) -> dict[str, Any]:
        typ = "embeddings" if m.get("embedding") else "vlm" if m.get("vision") else "llm"
        item: dict[str, Any] = {
            "id": m["id"], "object": "model", "type": typ, "publisher": "lmstudio-community",
            "arch": "qwen3", "compatibility_type": "gguf", "quantization": "Q4_K_M",
            "state": "loaded" if m.get("loaded_context") else "not-loaded",
            "max_context_length": m.get("context")}
        if m.get("loaded_context"):
            item["loaded_context_length"] = m["loaded_context"]
        if m.get("tools"):
            item["capabilities"] = ["tool_use"]
        return item

    def _props(self) -> dict[str, Any]:
        m = self.models[0] if self.models else {}
        return {"default_generation_settings": {"n_ctx": m.get("num_ctx") or m.get("context"),
                                                "params": {"temperature": 0.8}},
                "total_slots": 1, "model_path": f"/models/{m.get('id', 'none')}.gguf",
                "chat_template": "{{ messages }}",
                "chat_template_caps": {"supports_tools": bool(m.get("tools")),
                                       "supports_system_role": True},
                "modalities": {"vision": bool(m.get("vision")), "audio": False},
                "build_info": "b6500-fake"}

    def _litellm_info(self, m: dict[str, Any]) -> dict[str, Any]:
        return {"model_name": m["id"],
                "litellm_params": {"model": f"openai/{m['id']}", "api_base": "http://127.0.0.1:9"},
                "model_info": {
                    "id": digest_of(m), "key": m["id"], "max_tokens": m.get("output"),
                    "max_input_tokens": m.get("context"), "max_output_tokens": m.get("output"),
                    "input_cost_per_token": m["cost_in"] / 1e6 if "cost_in" in m else None,
                    "output_cost_per_token": m["cost_out"] / 1e6 if "cost_out" in m else None,
                    "litellm_provider": "openai",
                    "mode": "embedding" if m.get("embedding") else "chat",
                    "supports_function_calling": m.get("tools"),
                    "supports_vision": m.get("vision"), "supports_reasoning": m.get("reasoning")}}

    def _page_anthropic(self, query: dict[str, list[str]]) -> tuple[int, Any]:
        size = min(self.page_size, int(query.get("limit", ["20"])[0]))
        ids = [m["id"] for m in self.models]
        after = query.get("after_id", [None])[0]
        start = ids.index(after) + 1 if after in ids else 0
        page = self.models[start:start + size]
        data = [{"type": "model", "id": m["id"], "display_name": m.get("name", m["id"]),
                 "created_at": "2025-09-29T00:00:00Z"} for m in page]
        return 200, {"data": data, "has_more": start + size < len(ids),
                     "first_id": data[0]["id"] if data else None,
                     "last_id": data[-1]["id"] if data else None}

    def _page_gemini(self, query: dict[str, list[str]]) -> tuple[int, Any]:
        size = min(self.page_size, int(query.get("pageSize", ["50"])[0]))
        start = int(query.get("pageToken", ["0"])[0] or 0)
        page = self.models[start:start + size]
        body: dict[str, Any] = {"models": [{
            "name": f"models/{m['id']}", "version": "001", "displayName": m.get("name", m["id"]),
            "description": "", "inputTokenLimit": m.get("context"),
            "outputTokenLimit": m.get("output"),
            "supportedGenerationMethods": ["embedContent"] if m.get("embedding")
            else ["generateContent", "countTokens"],
            "temperature": 1.0, "topP": 0.95, "topK": 64, "thinking": bool(m.get("reasoning"))}
            for m in page]}
        if start + size < len(self.models):
            body["nextPageToken"] = str(start + size)
        return 200, body

    def null_body(self) -> dict[str, Any]:
        return {"models": None} if self.kind in ("ollama", "gemini") else {"data": None}


def _handler_for(fake: FakeProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            pass

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            fake.requests.append(Received(method, self.path, headers, body))
            split = urlsplit(self.path)
            query = parse_qs(split.query)
            if fake.delay:
                fake._closing.wait(fake.delay)
            fault = fake.fault
            if fault and (fake.fault_paths is None
                          or any(split.path.startswith(p) for p in fake.fault_paths)):
                self._fault(fault)
                return
            if not fake.authorised(headers, query):
                if fake.kind == "anthropic":
                    self._json(401, {"type": "error", "error": {
                        "type": "authentication_error", "message": "invalid x-api-key"}})
                elif fake.kind == "gemini":
                    self._json(400, {"error": {"code": 400, "status": "INVALID_ARGUMENT",
                               "message": "API key not valid. Please pass a valid API key."}})
                else:
                    self._json(401, {"error": {"message": "Invalid API key", "type": "auth"}})
                return
            status, payload = fake.route(method, split.path, query, body)
            self._json(status, payload)

        def _json(self, status: int, payload: Any, extra: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _fault(self, fault: str) -> None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self._do_fault(fault)  # a client giving up mid-fault is what should happen

        def _do_fault(self, fault: str) -> None:
            if fault == "hang":
                fake._closing.wait(120)
                self.close_connection = True
            elif fault == "slow":
                data = json.dumps({"data": [{"id": f"m{i}"} for i in range(500)]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                for i in range(len(data)):
                    if fake._closing.wait(0.05):
                        break
                    self.wfile.write(data[i:i + 1])
                    self.wfile.flush()
                self.close_connection = True
            elif fault == "500":
                self._json(500, {"error": {"message": "internal error", "type": "server_error"}})
            elif fault == "html":
                page = b"<!DOCTYPE html><html><body><h1>Welcome to nginx!</h1></body></html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)
            elif fault == "truncated":
                data = json.dumps({"data": [{"id": m["id"]} for m in fake.models]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
            elif fault == "error200":
                self._json(200, {"error": {"message": "upstream listing failed", "code": 503}})
            elif fault == "401":
                self._json(401, {"error": {"message": "Invalid API key", "type": "auth"}})
            elif fault == "429":
                self._json(429, {"error": {"message": "slow down"}},
                           {"Retry-After": str(fake.retry_after)})
            elif fault == "huge":
                prefix, suffix = b'{"data": [], "pad": "', b'"}'
                pad = HUGE_BYTES - len(prefix) - len(suffix)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(HUGE_BYTES))
                self.end_headers()
                self.wfile.write(prefix)
                chunk = b"x" * (1 << 20)
                while pad > 0:
                    self.wfile.write(chunk[:pad])
                    pad -= len(chunk)
                self.wfile.write(suffix)
            elif fault == "null":
                self._json(200, fake.null_body())
            else:
                raise ValueError(f"unknown fault {fault!r}")

    return Handler


@pytest.fixture
def fake_provider() -> Iterator[Callable[..., FakeProvider]]:
    """Factory: `fake_provider("ollama", models=None, api_key=None, variant=None)`; closed at teardown."""
    made: list[FakeProvider] = []

    def make(kind: str, models: list[dict[str, Any]] | None = None, **kw: Any) -> FakeProvider:
        fake = FakeProvider(kind, models, **kw)
        made.append(fake)
        return fake

    yield make
    for fake in made:
        fake.close()


def _one(kind: str) -> Callable[..., Iterator[FakeProvider]]:
    def fixture() -> Iterator[FakeProvider]:
        with FakeProvider(kind) as fake:
            yield fake
    fixture.__name__ = f"fake_{kind}"
    fixture.__doc__ = f"A running fake {kind} server with its default models."
    return fixture


fake_ollama = pytest.fixture(_one("ollama"), name="fake_ollama")
fake_lmstudio = pytest.fixture(_one("lmstudio"), name="fake_lmstudio")
fake_llamacpp = pytest.fixture(_one("llamacpp"), name="fake_llamacpp")
fake_openai = pytest.fixture(_one("openai"), name="fake_openai")
fake_anthropic = pytest.fixture(_one("anthropic"), name="fake_anthropic")
fake_gemini = pytest.fixture(_one("gemini"), name="fake_gemini")


def wait_until(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll `check` until true or `timeout` passes (for tests that watch a fake's `requests`)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.02)
    return check()
