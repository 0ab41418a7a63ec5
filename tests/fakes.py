"""Provider servers on 127.0.0.1 that answer with upstream bodies (tests/fixtures/upstream), with fault modes.

Fixtures (import them into conftest.py, or `from tests.fakes import fake_provider`):
    fake_provider   factory: fake_provider(kind, models=None, **kw) -> FakeProvider; all closed at teardown
    fake_ollama, fake_lmstudio, fake_llamacpp, fake_openai, fake_anthropic, fake_gemini
                    one running server of that kind with its default models

Two ways to serve. `corpus="server/scenario"` serves that fixture's routes byte for byte. Otherwise
the server answers for its `models` (simple dicts, see `default_models`), each item made from a real
upstream item (tests/upstream.py's templates) with only the values a test sets filled in: every key,
nesting and type is the upstream's own.

A FakeProvider's state is plain attributes, changed between cycles: `models`, `fault` (None |
"hang" | "slow" | "500" | "html" | "truncated" | "error200" | "401" | "429" | "huge" | "null"),
`fault_paths` (None = every path, else path prefixes the fault applies to), `retry_after`, `delay`
(seconds before every answer), `page_size` (Anthropic/Gemini pagination), `variant` ("litellm" |
"openrouter" | "vllm" for openai; "legacy" for an LM Studio 0.3 without /api/v1; "tags_caps" for an
Ollama 0.30+ whose /api/tags carries capabilities), `api_key`. `requests` records every request
received (method, path, headers, body).
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

if str(Path(__file__).resolve().parent) not in sys.path:  # imported as tests.fakes by a bench script
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import fake_bodies  # noqa: E402
import upstream  # noqa: E402
from fake_bodies import digest_of  # noqa: E402, F401  (tests import it from here)

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


class _Server(ThreadingHTTPServer):
    # real runtimes listen with a deep backlog (Go: 4096); socketserver's default of 5 drops SYNs
    # when syncd opens a hundred connections at once, and the client then waits out SYN retries
    request_queue_size = 1024


class FakeProvider:
    """One loopback server speaking one kind's shapes; see the module docstring for its knobs."""

    def __init__(self, kind: str, models: list[dict[str, Any]] | None = None, *,
                 api_key: str | None = None, variant: str | None = None,
                 corpus: str | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}")
        self.kind = kind
        self.variant = variant
        self.corpus: str | None = None
        self._routes: dict[Any, dict[str, Any]] = {}
        if corpus:
            self.serve(corpus)
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

    def serve(self, corpus: str) -> None:
        """From now on answer with this fixture's bodies (e.g. a model was loaded meanwhile)."""
        self._routes = upstream.routes(corpus)
        self.corpus = corpus

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        if self.corpus:
            return self.root + upstream.base_path(self.corpus)
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

    def route(self, method: str, path: str, query: str, body: bytes) -> tuple[int, Any]:
        if self.corpus:
            return self._from_corpus(method, path, query, body)
        k, v, models = self.kind, self.variant, self.models
        params = parse_qs(query)
        if k == "ollama":
            if path == "/api/tags":
                return 200, {"models": [fake_bodies.ollama_tag(m, v == "tags_caps") for m in models]}
            if path == "/api/show" and method == "POST":
                return self._show(body)
            if path == "/api/ps":
                return 200, fake_bodies.ollama_ps(models)
            if path == "/api/version":
                return 200, upstream.ollama_version()
        if k == "lmstudio":
            if path == "/api/v1/models":
                if v == "legacy":  # LM Studio 0.3 answers a path it lacks with 200 and an error
                    return 200, upstream.lmstudio_unexpected(path)
                return 200, {"models": [fake_bodies.lmstudio_v1(m) for m in models]}
            if path == "/api/v0/models":
                return 200, {"object": "list", "data": [fake_bodies.lmstudio_v0(m) for m in models]}
        if k == "llamacpp":
            if path == "/props":
                return 200, fake_bodies.llamacpp_props(models)
            if path == "/v1/models":
                return 200, fake_bodies.llamacpp_models(models)
        if k == "openai" and v == "litellm" and path in ("/model/info", "/v1/model/info"):
            return 200, {"data": [fake_bodies.litellm_info(m) for m in models]}
        if k == "anthropic" and path == "/v1/models":
            return self._page_anthropic(params)
        if k == "gemini" and path == "/v1beta/models":
            return self._page_gemini(params)
        if path == "/v1/models" or (v == "openrouter" and path == "/api/v1/models"):
            if k in ("anthropic", "gemini"):
                return 404, {"error": "not found"}
            return 200, {"object": "list", "data": [fake_bodies.openai_item(m, v) for m in models]}
        return 404, {"error": f"no route for {path}"}

    def _from_corpus(self, method: str, path: str, query: str, body: bytes) -> tuple[int, Any]:
        answer = self._routes.get(upstream.route_key(method, path, query))
        if answer is None:
            return 404, {"error": f"the fixture {self.corpus} has no route {method} {path}?{query}"}
        if "by" in answer:
            try:
                request = json.loads(body)
            except ValueError:
                return 400, {"error": "invalid JSON"}
            name = request.get(answer["by"]) or request.get("name")
            answer = answer["answers"].get(name, {"status": 404,
                                                  "body": {"error": f"model '{name}' not found"}})
        return int(answer["status"]), answer["body"]

    def _show(self, body: bytes) -> tuple[int, Any]:
        try:
            name = json.loads(body).get("model") or json.loads(body).get("name")
        except ValueError:
            return 400, {"error": "invalid JSON"}
        m = next((m for m in self.models if m["id"] == name), None)
        if m is None:  # Ollama's own answer for a model it does not have
            return 404, {"error": f"model '{name}' not found"}
        return 200, fake_bodies.ollama_show(m)

    def _page_anthropic(self, query: dict[str, list[str]]) -> tuple[int, Any]:
        size = min(self.page_size, int(query.get("limit", ["20"])[0]))
        ids = [m["id"] for m in self.models]
        after = query.get("after_id", [None])[0]
        start = ids.index(after) + 1 if after in ids else 0
        data = [fake_bodies.anthropic_item(m) for m in self.models[start:start + size]]
        return 200, {"data": data, "has_more": start + size < len(ids),
                     "first_id": data[0]["id"] if data else None,
                     "last_id": data[-1]["id"] if data else None}

    def _page_gemini(self, query: dict[str, list[str]]) -> tuple[int, Any]:
        size = min(self.page_size, int(query.get("pageSize", ["50"])[0]))
        start = int(query.get("pageToken", ["0"])[0] or 0)
        body: dict[str, Any] = {"models": [fake_bodies.gemini_item(m)
                                           for m in self.models[start:start + size]]}
        if start + size < len(self.models):
            body["nextPageToken"] = str(start + size)
        return 200, body

    def null_body(self) -> dict[str, Any]:
        return {"models": None} if self.kind in ("ollama", "gemini") else {"data": None}


def _handler_for(fake: FakeProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # as real servers do (Go's net/http, uvicorn): without it the body waits for the client's
        # delayed ACK of the headers, ~40 ms a request on loopback that no real runtime costs
        disable_nagle_algorithm = True

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
            status, payload = fake.route(method, split.path, split.query, body)
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
