"""syncd's HTTP/1.1 wire (providers/wire.py, http11.py) against raw loopback servers scripting every byte."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from syncd.errors import BadResponse, Unreachable
from syncd.model import Limits
from syncd.providers.fetch import make_client, request_json
from syncd.providers.http11 import HIGH_WATER, MAX_HEAD, Connection
from syncd.providers.wire import Http11Transport

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"data\":[]}"


class Raw:
    """A loopback server running `script` on each connection it accepts; counts connections."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.requests: list[bytes] = []
        self.closed = asyncio.Event()
        self._server: asyncio.Server | None = None

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> Raw:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=ssl_context)
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def request(self, reader: asyncio.StreamReader) -> bytes:
        """One request head (syncd's GETs have no body); b"" when the client hung up."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return b""
        self.requests.append(head)
        return head

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.script(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            self.closed.set()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()


@pytest.fixture
async def raw() -> AsyncIterator[Callable[[Script], Awaitable[Raw]]]:
    made: list[Raw] = []

    async def make(script: Script) -> Raw:
        server = await Raw(script).start()
        made.append(server)
        return server

    yield make
    for server in made:
        await server.close()


def answering(*answers: bytes, then_close: bool = False) -> Callable[[Raw], Script]:
    """A script: each request on a connection gets the next answer, in order."""
    def script_for(server: Raw) -> Script:
        async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            for answer in answers:
                if not await server.request(reader):
                    return
                writer.write(answer)
                await writer.drain()
            if not then_close:
                await reader.read()  # keep the connection until the client hangs up
        return script
    return script_for


async def serve(raw: Callable[[Script], Awaitable[Raw]], make: Callable[[Raw], Script]) -> Raw:
    box: list[Raw] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await make(box[0])(reader, writer)

    box.append(await raw(script))
    return box[0]


async def get(url: str, transport: Http11Transport | None = None, **kw: float) -> httpx.Response:
    async with httpx.AsyncClient(transport=transport or Http11Transport(),
                                 timeout=httpx.Timeout(kw.get("timeout", 5.0))) as client:
        response = await client.get(url)
        await response.aread()
        return response


# -- framing ------------------------------------------------------------------------------------

async def test_a_content_length_body_is_read_and_the_connection_kept_for_the_next_request(raw) -> None:
    server = await serve(raw, answering(OK, OK))
    async with httpx.AsyncClient(transport=Http11Transport()) as client:
        first, second = await client.get(server.url + "/a"), await client.get(server.url + "/b")
    assert first.json() == second.json() == {"data": []}
    assert server.connections == 1 and len(server.requests) == 2
    assert server.requests[0].startswith(b"GET /a HTTP/1.1\r\n")
    assert b"\r\nHost: 127.0.0.1:" in server.requests[0]


async def test_a_chunked_body_with_extensions_and_trailers_is_read_whole(raw) -> None:
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"4;name=value\r\n{\"da\r\n7\r\nta\":[]}\r\n0\r\nX-Trailer: yes\r\n\r\n")
    server = await serve(raw, answering(chunked, OK))
    async with httpx.AsyncClient(transport=Http11Transport()) as client:
        first, second = await client.get(server.url), await client.get(server.url)
    assert first.json() == {"data": []} and second.status_code == 200
    assert server.connections == 1  # a chunked body ends exactly: the connection is reusable


async def test_a_body_without_length_ends_with_the_connection_which_is_not_reused(raw) -> None:
    server = await serve(raw, answering(b"HTTP/1.1 200 OK\r\n\r\n{\"data\":[1,2]}", then_close=True))
    async with httpx.AsyncClient(transport=Http11Transport()) as client:
        first, second = await client.get(server.url), await client.get(server.url)
    assert first.json() == second.json() == {"data": [1, 2]}
    assert server.connections == 2


async def test_bare_line_feeds_and_blank_lines_before_the_status_are_read(raw) -> None:
    server = await serve(raw, answering(b"\r\n\nHTTP/1.1 200 OK\nContent-Length: 2\n\n[]"))
    response = await get(server.url)
    assert response.status_code == 200 and response.json() == []


async def test_an_interim_answer_is_skipped_for_the_final_one(raw) -> None:
    server = await serve(raw, answering(b"HTTP/1.1 100 Continue\r\n\r\n" + OK))
    assert (await get(server.url)).json() == {"data": []}


async def test_a_head_request_and_a_204_have_no_body_whatever_their_headers_say(raw) -> None:
    server = await serve(raw, answering(b"HTTP/1.1 204 No Content\r\nContent-Length: 50\r\n\r\n", OK))
    async with httpx.AsyncClient(transport=Http11Transport()) as client:
        empty = await client.get(server.url)
        after = await client.get(server.url)
    assert empty.status_code == 204 and empty.content == b""
    assert after.json() == {"data": []} and server.connections == 1


async def test_a_large_body_arrives_whole_through_the_read_pauses(raw) -> None:
    body = bytes(range(256)) * (24 * 1024)  # 6 MiB: several times the buffer's high-water mark
    server = await serve(raw, answering(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body))
    assert (await get(server.url)).content == body


async def test_reading_pauses_past_the_high_water_mark_and_resumes_once_drained() -> None:
    calls: list[str] = []

    class Socket(asyncio.Transport):
        def pause_reading(self) -> None:
            calls.append("pause")

        def resume_reading(self) -> None:
            calls.append("resume")

        def is_closing(self) -> bool:
            return False

    conn = Connection(("http", "127.0.0.1", 1))
    conn.connection_made(Socket())
    conn.data_received(b"x" * (HIGH_WATER + 1))
    assert calls == ["pause"]
    got = 0
    while got <= HIGH_WATER:
        got += len(await conn.some(1 << 16, 1.0))
    waiting = asyncio.ensure_future(conn.some(10, 5.0))
    await asyncio.sleep(0)
    assert calls == ["pause", "resume"]  # asking for more than is buffered reads the socket again
    conn.data_received(b"abc")
    assert await waiting == b"abc"


# -- broken answers -----------------------------------------------------------------------------

@pytest.mark.parametrize(("answer", "message"), [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"data\"", "complete message body"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"dat", "incomplete chunked read"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "invalid chunk size"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1" * 20 + b"\r\n", "invalid chunk size"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n[]xx0\r\n\r\n", "no line end"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "unsupported Transfer-Encoding"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n[]", "invalid Content-Length"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\n[]", "invalid Content-Length"),
    (b"ICY 200 OK\r\n\r\n", "not HTTP/1.x"),
    (b"HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n", "malformed header"),
    (b"HTTP/1.1 200 OK\r\n folded: x\r\n\r\n", "malformed header"),
    (b"HTTP/1.1 200 OK\r\nX: " + b"a" * (MAX_HEAD + 10), f"over {MAX_HEAD} bytes"),
    (b"HTTP/1.1 101 Switching Protocols\r\n\r\n", "switched protocols"),
    (b"HTTP/1.1 200 OK\r\nCont", "mid-head"),
])
async def test_a_broken_answer_is_a_protocol_error_naming_what_broke(raw, answer: bytes,
                                                                    message: str) -> None:
    server = await serve(raw, answering(answer, then_close=True))
    with pytest.raises(httpx.RemoteProtocolError, match=message):
        await get(server.url)


async def test_a_chunked_body_with_endless_trailers_is_cut_off(raw) -> None:
    trailers = b"X-T: " + b"t" * 1000 + b"\r\n"
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + trailers * 200
    server = await serve(raw, answering(answer, then_close=True))
    with pytest.raises(httpx.RemoteProtocolError, match="trailers over"):
        await get(server.url)


async def test_a_truncated_body_is_a_bad_response_in_syncds_words(raw) -> None:
    server = await serve(raw, answering(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"data\"",
                                        then_close=True))
    async with make_client(Limits(connect=1, read=2, total=5)) as client:
        with pytest.raises(BadResponse, match="truncated body"):
            await request_json(client, server.url + "/v1/models")


async def test_a_server_that_hangs_up_without_answering_is_unreachable(raw) -> None:
    server = await serve(raw, answering(then_close=True))

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.request(reader)

    server.script = hang_up
    async with make_client(Limits(connect=1, read=2, total=5)) as client:
        with pytest.raises(Unreachable, match="closed the connection without answering"):
            await request_json(client, server.url + "/v1/models")


async def test_a_silent_server_is_a_read_timeout(raw) -> None:
    server = await serve(raw, lambda s: lambda reader, writer: reader.read())
    with pytest.raises(httpx.ReadTimeout):
        await get(server.url, timeout=0.2)


# -- connections --------------------------------------------------------------------------------

async def test_a_kept_connection_the_server_dropped_costs_a_retry_not_an_error(raw) -> None:
    async def once_then_drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if await box[0].request(reader):
            writer.write(OK)
            await writer.drain()
        await box[0].request(reader)  # the second request on this connection: dropped unanswered

    box = [await raw(once_then_drop)]
    async with httpx.AsyncClient(transport=Http11Transport()) as client:
        first, second = await client.get(box[0].url), await client.get(box[0].url)
    assert first.status_code == second.status_code == 200
    assert box[0].connections == 2 and len(box[0].requests) == 3


async def test_a_connection_whose_body_was_not_read_to_the_end_is_closed(raw) -> None:
    body = b"[" + b"0," * 500_000 + b"0]"
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
    server = await serve(raw, answering(head + body, OK))
    async with httpx.AsyncClient(transport=Http11Transport()) as client:
        async with client.stream("GET", server.url) as response:
            async for _ in response.aiter_raw():
                break  # stop reading early, as fetch.py does at a limit
        await asyncio.wait_for(server.closed.wait(), 10)  # the server saw the hang-up
        assert (await client.get(server.url)).status_code == 200
    assert server.connections == 2


async def test_a_full_pool_makes_the_next_request_wait_up_to_its_pool_timeout(raw) -> None:
    def first_held(server: Raw) -> Script:  # the first connection's body never ends
        held = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n[]"
        return answering(held if server.connections == 1 else OK)(server)

    server = await serve(raw, first_held)
    transport = Http11Transport(max_connections=1)
    async with httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(5.0, pool=0.2)) as client:
        async with client.stream("GET", server.url) as held:  # its body never ends: held open
            assert held.status_code == 200
            with pytest.raises(httpx.PoolTimeout):
                await client.get(server.url)
        # the held connection was closed (its body was not read): the slot is free again
        assert (await client.get(server.url)).status_code == 200


async def test_closing_the_client_closes_its_idle_connections(raw) -> None:
    server = await serve(raw, answering(OK))
    await get(server.url)  # the client is closed after the answer; the server waits for the hang-up
    await asyncio.wait_for(server.closed.wait(), 10)


async def test_a_header_that_would_break_the_framing_is_never_sent(raw) -> None:
    server = await serve(raw, answering(OK))
    async with httpx.AsyncClient(transport=Http11Transport()) as client:
        with pytest.raises(httpx.LocalProtocolError):
            await client.get(server.url, headers={"X-Key": "a\r\nInjected: yes"})
    assert server.requests == []


async def test_a_json_body_is_sent_with_its_length(raw) -> None:
    async def echo_length(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await box[0].request(reader)
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        box[0].requests.append(await reader.readexactly(length))
        writer.write(OK)
        await writer.drain()

    box = [await raw(echo_length)]
    async with httpx.AsyncClient(transport=Http11Transport()) as client:
        assert (await client.post(box[0].url + "/api/show", json={"model": "m"})).status_code == 200
    assert box[0].requests[0].startswith(b"POST /api/show HTTP/1.1\r\n")
    assert box[0].requests[1] == b'{"model":"m"}'


# -- TLS ----------------------------------------------------------------------------------------

async def test_https_is_verified_and_spoken_through_tls(raw) -> None:
    from tests import hostile

    hostile._tls_context()  # makes the throwaway certificate
    assert hostile._CERT is not None
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(*hostile._CERT)
    box: list[Raw] = []
    box.append(await Raw(lambda r, w: answering(OK)(box[0])(r, w)).start(server_side))
    url = box[0].url.replace("http://", "https://")
    try:
        trusted = ssl.create_default_context(cafile=hostile._CERT[0])
        assert (await get(url, Http11Transport(ssl_context=trusted))).json() == {"data": []}
        with pytest.raises(httpx.ConnectError) as caught:  # httpx's own context: not trusted
            await get(url)
        assert isinstance(caught.value.__cause__, ssl.SSLCertVerificationError)
    finally:
        await box[0].close()
