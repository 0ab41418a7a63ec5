"""A server that wants to hurt syncd: redirects to steal keys, encoding bombs, floods, bad TLS.

Every server here is a stdlib server on 127.0.0.1 (tests/hostile.py) scripted by the test.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from syncd.errors import BadResponse, FetchError, Unreachable
from syncd.model import FetchResult, Kind, Limits, ProviderSpec, Secret
from syncd.providers.decoding import STEP, BodyDecoder
from syncd.providers.discover import FetchCache, fetch_models
from syncd.providers.fetch import make_client, request_json
from tests.fakes import wait_until
from tests.hostile import (
    Reply,
    Request,
    Servers,
    gzip_bomb,
    gzipped,
    json_reply,
    model_flood,
    redirect,
)

FAST = Limits(connect=1.0, read=2.0, total=10.0)
KEY = "sk-hostile-test-0123456789"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def servers() -> Iterator[Servers]:
    made = Servers()
    yield made
    made.close()


async def fetch(spec: ProviderSpec, limits: Limits = FAST, cache: FetchCache | None = None
                ) -> FetchResult | FetchError:
    async with make_client(limits) as client:
        try:
            return await fetch_models(spec, client, limits=limits, cache=cache)
        except FetchError as exc:
            return exc


MODELS = {"object": "list", "data": [{"id": "good-model", "object": "model"}]}


# -- 1. credentials never follow a redirect to another origin ----------------------------------

CREDENTIALED = [
    (Kind.OPENAI, "/v1", "authorization"),
    (Kind.ANTHROPIC, "/v1", "x-api-key"),
    (Kind.GEMINI, "/v1beta", "x-goog-api-key"),
]


@pytest.mark.parametrize(("kind", "prefix", "header"), CREDENTIALED)
async def test_a_redirect_to_another_origin_is_refused_and_no_credential_reaches_it(
    servers: Servers, kind: Kind, prefix: str, header: str
) -> None:
    thief = servers(lambda r: json_reply({"data": [{"id": "stolen"}], "models": []}))
    victim = servers(lambda r: redirect(thief.url + r.path, 307))
    spec = ProviderSpec(id="p", base_url=victim.url + prefix, kind=kind, api_key=Secret(KEY),
                        headers={"Proxy-Authorization": Secret("Basic cHJveHk6cGFzcw=="),
                                 "X-Team-Token": Secret("team-secret-value")})
    result = await fetch(spec)
    assert isinstance(result, BadResponse)
    assert thief.requests == []  # not one byte, so not one header
    assert f"127.0.0.1:{thief.port}" in result.reason and "point baseURL there" in result.reason
    assert victim.requests[0].headers[header]  # the key did go where it was configured for


async def test_a_redirect_within_the_origin_is_followed_with_its_credentials(
    servers: Servers,
) -> None:
    def route(r: Request) -> Reply:
        if r.path == "/v1/models":
            return redirect("/v1/models/", 308)
        return json_reply(MODELS)

    server = servers(route)
    spec = ProviderSpec(id="p", base_url=server.url + "/v1", kind=Kind.OPENAI, api_key=Secret(KEY))
    result = await fetch(spec)
    assert isinstance(result, FetchResult) and [m.id for m in result.models] == ["good-model"]
    assert [r.headers.get("authorization") for r in server.requests] == [f"Bearer {KEY}"] * 2


@pytest.mark.parametrize("location", [
    "https://127.0.0.1:{port}/v1/models",  # same host, other scheme: another origin
    "http://127.0.0.1:1/v1/models",  # same host, other port
    "file:///etc/passwd",
    "ftp://127.0.0.1/models",
])
async def test_every_other_origin_counts_as_another_origin(servers: Servers, location: str) -> None:
    server = servers(lambda r: redirect(location.format(port=server.port)))
    spec = ProviderSpec(id="p", base_url=server.url + "/v1", kind=Kind.OPENAI, api_key=Secret(KEY))
    result = await fetch(spec)
    assert isinstance(result, BadResponse) and "another origin" in result.reason
    assert len(server.requests) == 1


async def test_a_redirect_loop_ends_in_a_clear_error(servers: Servers) -> None:
    server = servers(lambda r: redirect(r.path))
    spec = ProviderSpec(id="p", base_url=server.url + "/v1", kind=Kind.OPENAI)
    result = await fetch(spec)
    assert isinstance(result, BadResponse) and "redirects" in result.reason
    assert len(server.requests) == 6


# -- 2. one Content-Encoding layer, decoded under the limit ------------------------------------

@pytest.mark.parametrize("header", ["gzip, gzip", "gzip,deflate"])
async def test_stacked_encodings_are_refused(servers: Servers, header: str) -> None:
    body = json.dumps(MODELS).encode()
    server = servers(lambda r: gzipped(body, layers=2, header=header))
    result = await fetch(ProviderSpec(id="p", base_url=server.url + "/v1", kind=Kind.OPENAI))
    assert isinstance(result, BadResponse) and "stacked encodings" in result.reason


async def test_stacked_encodings_in_two_header_lines_are_refused_too(servers: Servers) -> None:
    body = gzip.compress(gzip.compress(json.dumps(MODELS).encode()))
    server = servers(lambda r: Reply(200, (("Content-Encoding", "gzip"), ("Content-Encoding", "gzip")),
                                     body))
    result = await fetch(ProviderSpec(id="p", base_url=server.url + "/v1", kind=Kind.OPENAI))
    assert isinstance(result, BadResponse) and "stacked encodings" in result.reason


@pytest.mark.parametrize("coding", ["gzip", "deflate", "raw-deflate", "identity"])
async def test_one_layer_of_gzip_or_deflate_is_read(servers: Servers, coding: str) -> None:
    body = json.dumps(MODELS).encode()
    if coding == "gzip":
        reply = gzipped(body)
    else:
        packer = zlib.compressobj(wbits=-zlib.MAX_WBITS if coding == "raw-deflate" else zlib.MAX_WBITS)
        data = packer.compress(body) + packer.flush() if coding != "identity" else body
        reply = Reply(200, (("Content-Encoding", coding.replace("raw-", "")),), data)
    server = servers(lambda r: reply)
    result = await fetch(ProviderSpec(id="p", base_url=server.url + "/v1", kind=Kind.OPENAI))
    assert isinstance(result, FetchResult) and [m.id for m in result.models] == ["good-model"]
    assert server.requests[0].headers["accept-encoding"] == "gzip, deflate"


async def test_a_gzip_bomb_stops_at_the_body_limit(servers: Servers) -> None:
    bomb = gzip_bomb(256 << 20)  # 256 MiB of blanks in ~260 KB
    server = servers(lambda r: Reply(200, (("Content-Encoding", "gzip"),), bomb))
    limits = Limits(connect=1, read=5, total=20, max_body=4 << 20)
    result = await fetch(ProviderSpec(id="p", base_url=server.url + "/v1", kind=Kind.OPENAI), limits)
    assert isinstance(result, BadResponse) and "limit (decoded)" in result.reason


def test_the_decoder_never_hands_out_more_than_a_step_past_the_limit() -> None:
    bomb = gzip_bomb(64 << 20)
    decoder = BodyDecoder(["gzip"], cap=1 << 20)
    produced = 0
    with pytest.raises(BadResponse, match="limit"):
        for piece in decoder.feed(bomb):  # the whole bomb in one piece, as a fast network gives it
            assert len(piece) <= STEP
            produced += len(piece)
    assert produced <= (1 << 20)


@pytest.mark.parametrize(("coding", "body", "expected"), [
    ("br", b"\x1b\x03", "Content-Encoding 'br'"),
    ("gzip", b"this is not gzip", "corrupt gzip body"),
    ("gzip", gzip.compress(json.dumps(MODELS).encode())[:-12], "truncated gzip body"),
])
async def test_a_body_that_cannot_be_decoded_says_so(
    servers: Servers, coding: str, body: bytes, expected: str
) -> None:
    server = servers(lambda r: Reply(200, (("Content-Encoding", coding),), body))
    result = await fetch(ProviderSpec(id="p", base_url=server.url + "/v1", kind=Kind.OPENAI))
    assert isinstance(result, BadResponse) and expected in result.reason
    assert "is the server running" not in result.reason


# -- 3. floods inside the body limit -----------------------------------------------------------

@pytest.mark.parametrize(("kind", "key", "item"), [
    (Kind.OPENAI, b"data", b'{"id":"m%d"}'),
    (Kind.OPENAI, b"data", b"0"),
    (Kind.OLLAMA, b"models", b'{"name":"m%d:latest","model":"m%d:latest","capabilities":["completion"]}'),
])
async def test_a_model_flood_is_refused_at_the_model_limit_without_reading_the_rest(
    servers: Servers, kind: Kind, key: bytes, item: bytes
) -> None:
    # at least 120 MB: more than loopback's socket buffers can hold (up to 4 MB sent + 32 MB
    # received here), so what the server got rid of measures what syncd read, not what the kernel
    # buffered while a loaded machine scheduled syncd late
    count = 60_000_000
    server = servers(lambda r: Reply(body=model_flood(count, item=item, key=key)))
    limits = Limits(connect=1, read=5, total=20)
    result = await fetch(ProviderSpec(id="p", base_url=server.url + "/v1", kind=kind), limits)
    assert isinstance(result, BadResponse)
    assert "served more than 5000 models, over the limit of 5000" in result.reason
    assert wait_until(lambda: bool(server.sent))  # the server thread records it after the hang-up
    assert server.sent[0] < 48 << 20  # syncd hung up instead of reading 60 million models


async def test_a_list_of_exactly_the_limit_is_read(servers: Servers) -> None:
    server = servers(lambda r: Reply(body=model_flood(50)))
    limits = Limits(connect=1, read=5, total=20, max_models=50)
    result = await fetch(ProviderSpec(id="p", base_url=server.url + "/v1", kind=Kind.OPENAI), limits)
    assert isinstance(result, FetchResult) and len(result.models) == 50


async def test_one_item_that_would_fill_memory_is_refused(servers: Servers) -> None:
    def route(_r: Request) -> Reply:
        block = b",{}" * 65536
        return Reply(body=iter([b'{"data":[{"id":"x","junk":[{}', *([block] * 48), b"]}]}"]))

    server = servers(route)
    limits = Limits(connect=1, read=5, total=20, max_memory=4 << 20)
    result = await fetch(ProviderSpec(id="p", base_url=server.url + "/v1", kind=Kind.OPENAI), limits)
    assert isinstance(result, BadResponse) and "MiB of memory" in result.reason


async def test_json_nested_past_the_parser_is_a_bad_response(servers: Servers) -> None:
    server = servers(lambda r: Reply(body=b'{"data":[' + b"[" * 200_000 + b"]" * 200_000 + b"]}"))
    result = await fetch(ProviderSpec(id="p", base_url=server.url + "/v1", kind=Kind.OPENAI))
    assert isinstance(result, BadResponse) and "nested too deeply" in result.reason


# -- 7. the real cause, named ------------------------------------------------------------------

async def test_an_untrusted_certificate_is_named_as_such(servers: Servers) -> None:
    server = servers(lambda r: json_reply(MODELS), tls=True)
    result = await fetch(ProviderSpec(id="p", base_url=server.url + "/v1", kind=Kind.OPENAI))
    assert isinstance(result, Unreachable)
    assert "TLS certificate not trusted" in result.reason and "SSL_CERT_FILE" in result.reason
    assert "is the server running" not in result.reason


def test_running_out_of_file_descriptors_is_named_as_such(servers: Servers) -> None:
    server = servers(lambda r: json_reply(MODELS))
    script = textwrap.dedent(f"""
        import asyncio, os, resource
        from syncd.errors import FetchError
        from syncd.providers.fetch import make_client, request_json

        async def main():
            async with make_client() as client:
                soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
                held = []
                try:
                    while True:
                        held.append(os.open("/dev/null", os.O_RDONLY))
                except OSError:
                    pass
                try:
                    await request_json(client, "{server.url}/v1/models")
                except FetchError as exc:
                    print(type(exc).__name__, exc.reason)
                for fd in held:
                    os.close(fd)

        import resource as r
        r.setrlimit(r.RLIMIT_NOFILE, (256, r.getrlimit(r.RLIMIT_NOFILE)[1]))
        asyncio.run(main())
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                         cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert "too many open files" in out.stdout and "LimitNOFILE" in out.stdout, out.stdout + out.stderr


# -- 4. what one server says never describes another's model -----------------------------------

DIGEST = "sha256:" + "ab" * 32


def _ollama_route(context: int) -> Callable[[Request], Reply]:
    """An Ollama-kind server; bodies shaped as ollama's docs/api.md shows /api/tags and /api/show."""
    def route(r: Request) -> Reply:
        if r.path == "/api/tags":
            return json_reply({"models": [{"name": "llama3.2:3b", "model": "llama3.2:3b",
                                           "modified_at": "2025-01-01T00:00:00Z", "size": 2019393189,
                                           "digest": DIGEST, "details": {"format": "gguf",
                                                                          "family": "llama"}}]})
        if r.path == "/api/show":
            return json_reply({"parameters": "", "template": "{{ .Prompt }}",
                               "details": {"format": "gguf", "family": "llama"},
                               "model_info": {"general.architecture": "llama",
                                              "llama.context_length": context},
                               "capabilities": ["completion", "tools"]})
        return json_reply({"error": "not found"}, 404)
    return route


async def test_an_ollama_server_claiming_anothers_digest_does_not_describe_its_model(
    servers: Servers,
) -> None:
    hostile = servers(_ollama_route(999_999_999))
    honest = servers(_ollama_route(131_072))
    cache = FetchCache()
    first = await fetch(ProviderSpec(id="evil", base_url=hostile.url + "/v1", kind=Kind.OLLAMA),
                        cache=cache)
    assert isinstance(first, FetchResult) and first.models[0].context == 999_999_999
    second = await fetch(ProviderSpec(id="ollama", base_url=honest.url + "/v1", kind=Kind.OLLAMA),
                         cache=cache)
    assert isinstance(second, FetchResult) and second.models[0].context == 131_072
    # asked its own /api/show (its /api/ps, for loaded runners, is beside the point here)
    assert [r.path for r in honest.requests if r.path != "/api/ps"] == ["/api/tags", "/api/show"]
    restored = FetchCache.from_json(json.loads(json.dumps(cache.to_json())))
    assert restored.show(honest.url, DIGEST) == cache.show(honest.url, DIGEST)
    assert restored.show(hostile.url, DIGEST) != restored.show(honest.url, DIGEST)


async def test_error_bodies_are_read_only_as_far_as_their_message(servers: Servers) -> None:
    server = servers(lambda r: Reply(500, body=iter([b'{"error": {"message": "boom"}, "pad": "',
                                                     *([b"x" * 65536] * 512), b'"}'])))
    async with make_client(FAST) as client:
        with pytest.raises(FetchError) as info:
            await request_json(client, server.url + "/v1/models", limits=FAST)
    assert "HTTP 500" in info.value.reason
    assert wait_until(lambda: bool(server.sent))  # the server thread records it after the hang-up
    assert server.sent[0] < 16 << 20
