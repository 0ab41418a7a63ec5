"""Hostile servers on 127.0.0.1 for tests and benches: each answer is whatever the test scripts.

    with HostileServer(lambda req: Reply(200, body=b'{"data": []}')) as server:
        server.url            # http://127.0.0.1:PORT
        server.requests       # every request received: method, path, lower-case headers, body
        server.sent           # bytes of body written per request, in order (a streamed body
                              # stops early when the client hangs up)

`Reply.body` is bytes or an iterable of byte chunks (streamed without Content-Length and the
connection closed after it, so a flood costs the server nothing to build). `tls=True` serves
https with a throwaway self-signed certificate (made with the `openssl` command), which no
client trusts. `python tests/hostile.py flood|gzip-stack|…` runs one in a process of its own for
the benches (its port is printed on the first line).
"""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)
    body: bytes | Iterable[bytes] = b""


def json_reply(payload: Any, status: int = 200, *extra: tuple[str, str]) -> Reply:
    return Reply(status, (("Content-Type", "application/json"), *extra), json.dumps(payload).encode())


def redirect(location: str, status: int = 302) -> Reply:
    return Reply(status, (("Location", location), ("Content-Length", "0")), b"")


def gzipped(data: bytes, layers: int = 1, header: str | None = None) -> Reply:
    """`data` gzipped `layers` times, labelled with as many `gzip` codings (or `header`)."""
    for _ in range(layers):
        data = gzip.compress(data, compresslevel=9)
    coding = header or ", ".join(["gzip"] * layers)
    return Reply(200, (("Content-Type", "application/json"), ("Content-Encoding", coding)), data)


def gzip_bomb(size: int, layers: int = 1, fill: bytes = b" ") -> bytes:
    """`[` + `size` bytes of `fill` + `]`, gzipped `layers` times without ever holding `size` bytes."""
    inner = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = fill * (1 << 20)
    parts = [inner.compress(b"[")]
    for _ in range(size // len(block)):
        parts.append(inner.compress(block))
    parts += [inner.compress(fill * (size % len(block)) + b"]"), inner.flush()]
    data = b"".join(parts)
    for _ in range(layers - 1):
        data = gzip.compress(data, compresslevel=9)
    return data


def model_flood(count: int, item: bytes = b'{"id":"m%d"}', key: bytes = b"data") -> Iterator[bytes]:
    """`{"data":[{"id":"m0"},…]}` with `count` items, produced as it is sent."""
    yield b'{"' + key + b'":['
    batch: list[bytes] = []
    for i in range(count):
        batch.append(item.replace(b"%d", str(i).encode()) if b"%d" in item else item)
        if len(batch) == 4096:
            yield (b"," if i >= 4096 else b"") + b",".join(batch)
            batch = []
    if batch:
        yield (b"," if count > len(batch) else b"") + b",".join(batch)
    yield b"]}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up on a flood is the point, not a failure worth a traceback


class HostileServer:
    """One loopback HTTP(S) server answering every request with `route(request)`."""

    def __init__(self, route: Callable[[Request], Reply], *, tls: bool = False) -> None:
        self.route = route
        self.requests: list[Request] = []
        self.sent: list[int] = []
        self._server = _Server(("127.0.0.1", 0), _handler(self))
        self.tls = tls
        if tls:
            self._server.socket = _tls_context().wrap_socket(self._server.socket, server_side=True)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> HostileServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _handler(server: HostileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            request = Request(method, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            server.requests.append(request)
            reply = server.route(request)
            self.send_response(reply.status)
            for name, value in reply.headers:
                self.send_header(name, value)
            sent = 0
            try:
                if isinstance(reply.body, bytes):
                    if not any(n.lower() == "content-length" for n, _ in reply.headers):
                        self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                    sent = len(reply.body)
                else:
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.close_connection = True
                    for chunk in reply.body:
                        self.wfile.write(chunk)
                        sent += len(chunk)
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
                self.close_connection = True  # the client hung up: what a careful client does
            finally:
                server.sent.append(sent)

    return Handler


_CERT: tuple[str, str] | None = None


def _tls_context() -> ssl.SSLContext:
    """A server context with a self-signed certificate for 127.0.0.1, made once per process."""
    global _CERT
    if _CERT is None:
        folder = Path(tempfile.mkdtemp(prefix="syncd-hostile-tls-"))
        cert, key = folder / "cert.pem", folder / "key.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
             "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True,
        )
        _CERT = (str(cert), str(key))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*_CERT)
    return context


def free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the same servers in a process of their own (benches measure syncd's memory alone) ---------

SCENARIOS: dict[str, Callable[[Request], Reply]] = {
    # 1M tiny models (~17 MB): the 318 MB case
    "flood": lambda _r: Reply(body=model_flood(1_000_000)),
    # 16M list items in 32 MiB: the 1.3-1.4 GB case
    "items": lambda _r: Reply(body=model_flood(16_000_000, item=b"0")),
    # a few KiB that unpack twice to 1 GiB (the issue saw 4.1 GB RSS from such a body)
    "gzip-stack": lambda _r: Reply(200, (("Content-Encoding", "gzip, gzip"),), _BOMB2),
    # one gzip layer of 1 GiB: decoded only up to the body limit
    "gzip-bomb": lambda _r: Reply(200, (("Content-Encoding", "gzip"),), _BOMB1),
    # one model whose value is 32 MiB of empty objects: every 3 bytes an object
    "one-item": lambda _r: Reply(body=_one_item(32 << 20)),
    # what a big gateway really serves: 5,000 models shaped as OpenRouter's /api/v1/models
    "legit": lambda _r: Reply(body=_LEGIT),
    "small": lambda _r: json_reply({"data": [{"id": f"m{i}"} for i in range(3)]}),
}

_OPENROUTER_ITEM = {  # the fields of one openrouter.ai/api/v1/models entry (its API reference)
    "id": "", "canonical_slug": "qwen/qwen3-coder-480b-a35b-07-25", "name": "Qwen: Qwen3 Coder",
    "created": 1753230546, "description": "A Mixture-of-Experts code model. " * 10,
    "context_length": 262144,
    "architecture": {"modality": "text->text", "input_modalities": ["text"],
                     "output_modalities": ["text"], "tokenizer": "Qwen3", "instruct_type": None},
    "pricing": {"prompt": "0.00000022", "completion": "0.00000095", "request": "0", "image": "0",
                "web_search": "0", "internal_reasoning": "0"},
    "top_provider": {"context_length": 262144, "max_completion_tokens": None, "is_moderated": False},
    "per_request_limits": None,
    "supported_parameters": ["frequency_penalty", "logit_bias", "max_tokens", "min_p",
                             "presence_penalty", "response_format", "seed", "stop", "temperature",
                             "tool_choice", "tools", "top_k", "top_p"],
}
_LEGIT = json.dumps({"data": [dict(_OPENROUTER_ITEM, id=f"vendor/model-{i}")
                              for i in range(5000)]}).encode()


def _one_item(size: int) -> Iterator[bytes]:
    yield b'{"data":[{"id":"x","junk":[{}'
    block = b",{}" * 65536
    for _ in range(size // len(block)):
        yield block
    yield b"]}]}"


_BOMB1 = b""
_BOMB2 = b""


def serve_forever(name: str) -> None:
    global _BOMB1, _BOMB2
    if name.startswith("gzip"):
        _BOMB1 = gzip_bomb(1 << 30)
        _BOMB2 = gzip.compress(_BOMB1, compresslevel=9)
    server = HostileServer(SCENARIOS[name])
    print(server.port, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    serve_forever(sys.argv[1])


@dataclass
class Servers:
    """Every HostileServer a test made, closed at teardown."""

    made: list[HostileServer] = field(default_factory=list)

    def __call__(self, route: Callable[[Request], Reply], *, tls: bool = False) -> HostileServer:
        server = HostileServer(route, tls=tls)
        self.made.append(server)
        return server

    def close(self) -> None:
        for server in self.made:
            server.close()
