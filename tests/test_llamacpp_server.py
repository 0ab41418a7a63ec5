"""A real llama-server (built by .ci/run from llama-cpp-python's sdist) serving tiny random GGUFs: what syncd
reads in single-model and router mode, and that loading or unloading a model never rewrites the config."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from gguf_models import PLAIN_TEMPLATE, write_tiny_llama
from test_once_e2e import models_in, once, write_config

from syncd.model import FetchResult, Kind, Limits, ProviderSpec
from syncd.providers.discover import FetchCache, fetch_models, make_client

pytestmark = pytest.mark.llamacpp
LIMITS = Limits(connect=2, read=10, total=20)
TOOLS = [{"type": "function", "function": {"name": "get_time", "description": "the time",
                                            "parameters": {"type": "object", "properties": {}}}}]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny-a (trained for 32768, tools in its template) and tiny-b (16384, no tools in its template)."""
    folder = tmp_path_factory.mktemp("gguf")
    write_tiny_llama(folder / "tiny-a.gguf", name="tiny-a", context_length=32768)
    write_tiny_llama(folder / "tiny-b.gguf", name="tiny-b", context_length=16384, seed=1,
                     chat_template=PLAIN_TEMPLATE)
    return folder


class Server:
    """One llama-server on a free loopback port (its default host is 127.0.0.1; said anyway)."""

    def __init__(self, binary: str, args: list[str], log: Path) -> None:
        self.url = f"http://127.0.0.1:{_free_port()}"
        self._log = log.open("wb")
        port = self.url.rsplit(":", 1)[1]
        self.proc = subprocess.Popen(
            [binary, *args, "--host", "127.0.0.1", "--port", port, "--threads", "1", "--no-warmup"],
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while not self._healthy():
            if self.proc.poll() is not None:
                pytest.fail(f"llama-server exited with {self.proc.returncode}: see {log}")
            if time.monotonic() > deadline:
                pytest.fail(f"llama-server not ready within 60 s: see {log}")
            time.sleep(0.1)

    def _healthy(self) -> bool:
        try:
            return httpx.get(self.url + "/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def post(self, path: str, body: object) -> httpx.Response:
        return httpx.post(self.url + path, json=body, timeout=60)

    def router_state(self, model: str) -> str:
        data = httpx.get(self.url + "/v1/models", timeout=5).json()["data"]
        return str(next(m for m in data if m["id"] == model)["status"]["value"])

    def switch(self, model: str, *, load: bool) -> None:
        """Load or unload a router's model and wait until the router says so."""
        assert self.post("/models/load" if load else "/models/unload", {"model": model}).status_code == 200
        want = "loaded" if load else "unloaded"
        deadline = time.monotonic() + 60
        while self.router_state(model) != want:
            assert time.monotonic() < deadline, f"{model} not {want} within 60 s"
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # the router's children share its group
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._log.close()


@pytest.fixture
def server(llama_server_bin: str, tmp_path: Path) -> Iterator[list[Server]]:
    """Start servers with `server.append(Server(...))`; each is stopped at teardown."""
    started: list[Server] = []
    yield started
    for s in started:
        s.stop()


async def fetch(url: str, cache: FetchCache | None = None) -> FetchResult:
    spec = ProviderSpec(id="llamacpp", base_url=url + "/v1")
    async with make_client(LIMITS) as client:
        return await fetch_models(spec, client, limits=LIMITS, cache=cache)


def chat_with_tools(srv: Server, model: str) -> int:
    body = {"model": model, "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}],
            "tools": TOOLS}
    return srv.post("/v1/chat/completions", body).status_code


async def test_single_model_server_serves_its_ctx_size(
        llama_server_bin: str, models_dir: Path, server: list[Server], tmp_path: Path) -> None:
    srv = Server(llama_server_bin, ["-m", str(models_dir / "tiny-a.gguf"), "-c", "4096"],
                 tmp_path / "single.log")
    server.append(srv)
    result = await fetch(srv.url)
    assert result.kind is Kind.LLAMACPP
    (model,) = result.models
    assert (model.context, model.context_served, model.max_context) == (4096, True, 32768)
    assert model.tool_call is True


async def test_router_context_is_its_ctx_size_loaded_or_not_and_tools_are_never_refused(
        llama_server_bin: str, models_dir: Path, server: list[Server], tmp_path: Path) -> None:
    srv = Server(llama_server_bin, ["--models-dir", str(models_dir), "-c", "4096"],
                 tmp_path / "router.log")
    server.append(srv)
    unloaded = {m.id: m for m in (await fetch(srv.url)).models}
    srv.switch("tiny-a", load=True)
    loaded = {m.id: m for m in (await fetch(srv.url)).models}
    assert {i: m.context for i, m in unloaded.items()} == {"tiny-a": 4096, "tiny-b": 4096}
    assert {i: m.context for i, m in loaded.items()} == {"tiny-a": 4096, "tiny-b": 4096}
    # tiny-b's template has no tools, yet llama-server takes a tools request for it: no `false`
    assert chat_with_tools(srv, "tiny-b") == 200
    assert all(m.tool_call is not False for m in (*unloaded.values(), *loaded.values()))


def test_loading_and_unloading_a_router_model_never_rewrites_the_config(
        llama_server_bin: str, models_dir: Path, server: list[Server], tmp_path: Path) -> None:
    srv = Server(llama_server_bin, ["--models-dir", str(models_dir)], tmp_path / "router.log")
    server.append(srv)
    cfg = write_config(tmp_path / "opencode.jsonc", {"llamacpp": srv.url + "/v1"})
    assert once(cfg).returncode == 0
    assert "limit" not in models_in(cfg, "llamacpp")["tiny-a"]  # not loaded: nothing says a length

    srv.switch("tiny-a", load=True)
    assert once(cfg).returncode == 0
    assert models_in(cfg, "llamacpp")["tiny-a"]["limit"]["context"] == 32768  # what it serves now
    written = cfg.read_bytes()

    for load in (False, True, False):
        srv.switch("tiny-a", load=load)
        assert once(cfg).returncode == 0
        assert cfg.read_bytes() == written, f"rewritten after {'loading' if load else 'unloading'}"
