"""HTTP/1.1 messages on one asyncio socket: buffered reads, request bytes, response heads, body framing.

wire.py pools these connections under httpx. What a server sends is bounded at every step: a
head within MAX_HEAD, a chunk-size line within MAX_LINE, unread bytes held up to HIGH_WATER
before the socket is paused; anything malformed is httpx's RemoteProtocolError naming it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import httpx

MAX_HEAD = 100 * 1024  # status line + headers, and a chunked body's trailers (h11 under httpx: same)
MAX_LINE = 8 * 1024  # one chunk-size line
_PIECE = 64 * 1024  # most bytes handed up at once
HIGH_WATER = 1024 * 1024  # buffered and unread: stop reading the socket until it drains
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_LINE_END = re.compile(rb"\r?\n")
_STATUS = re.compile(rb"HTTP/(\d)\.(\d) ([1-9]\d\d)(?: ([^\r\n]*))?")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(rb"[^\x00\r\n]*")
_TARGET = re.compile(rb"[!-~]+")
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")

Origin = tuple[str, str, int]
Head = tuple[tuple[int, int], int, bytes, list[tuple[bytes, bytes]]]


class Connection(asyncio.Protocol):
    """One socket: what arrived and is not read yet, and whether the peer is gone."""

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.received = 0  # bytes in all
        self.eof = False
        self.error: BaseException | None = None
        self.reused = False
        self.idle_since = 0.0
        self._waiter: asyncio.Future[None] | None = None
        self._drained: asyncio.Future[None] | None = None
        self._reading_paused = False

    # -- asyncio's side -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self.received += len(data)
        if len(self.buffer) > HIGH_WATER and not self._reading_paused and self.transport:
            self.transport.pause_reading()
            self._reading_paused = True
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False  # nothing more to say to a peer that is done: close

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        self._wake()
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def pause_writing(self) -> None:
        self._drained = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        self._drained = None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # -- ours ---------------------------------------------------------------------------------

    def reusable(self) -> bool:
        """Open and silent: a peer that closed, or spoke unasked, cannot take another request."""
        return (not self.eof and not self.buffer and self.transport is not None
                and not self.transport.is_closing())

    def close(self) -> None:
        """Hang up (the socket closes on the loop's next turn): nothing is left to send."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()

    async def send(self, data: bytes, timeout: float | None) -> None:
        if self.transport is None or self.transport.is_closing():
            raise httpx.WriteError("the connection closed before the request was sent")
        self.transport.write(data)
        if self._drained is not None:
            try:
                async with asyncio.timeout(timeout):
                    await self._drained
            except TimeoutError:
                raise httpx.WriteTimeout(f"request not sent within {timeout:g}s") from None
        if isinstance(self.error, OSError):
            raise httpx.WriteError(str(self.error)) from self.error

    async def _more(self, timeout: float | None) -> bool:
        """Wait for bytes past what is buffered; False when the peer is gone."""
        if self.eof:
            return False
        if self._reading_paused and self.transport is not None:
            self.transport.resume_reading()
            self._reading_paused = False
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(timeout):
                await self._waiter
        except TimeoutError:
            raise httpx.ReadTimeout(f"no answer within {timeout:g}s") from None
        finally:
            self._waiter = None
        return True

    def _lost(self) -> None:
        """Raise the OS error that ended the connection, if one did (a reset, not a clean close)."""
        if isinstance(self.error, OSError):
            raise httpx.ReadError(str(self.error) or type(self.error).__name__) from self.error

    async def head(self, timeout: float | None) -> bytes | None:
        """A response head, up to the blank line that ends it; None: closed before any byte."""
        start = 0
        while True:
            while self.buffer.startswith((b"\r\n", b"\n")):  # blank lines before it: skipped
                del self.buffer[: 1 if self.buffer[0] == 0x0A else 2]
            end = _HEAD_END.search(self.buffer, start)
            if end is not None:
                head = bytes(self.buffer[:end.start()])
                del self.buffer[:end.end()]
                return head
            if len(self.buffer) > MAX_HEAD:
                raise httpx.RemoteProtocolError(f"response head is over {MAX_HEAD} bytes")
            start = max(0, len(self.buffer) - 3)
            if not await self._more(timeout):
                self._lost()
                if not self.buffer:
                    return None
                raise httpx.RemoteProtocolError("the server closed the connection mid-head")

    async def line(self, timeout: float | None) -> bytes:
        """One line of a chunked body (a size line, a chunk's end, a trailer)."""
        while True:
            end = _LINE_END.search(self.buffer)
            if end is not None:
                line = bytes(self.buffer[:end.start()])
                del self.buffer[:end.end()]
                return line
            if len(self.buffer) > MAX_LINE:
                raise httpx.RemoteProtocolError(f"chunked body: a line over {MAX_LINE} bytes")
            if not await self._more(timeout):
                self._lost()
                raise httpx.RemoteProtocolError("peer closed connection without sending complete "
                                                "message body (incomplete chunked read)")

    async def some(self, most: int, timeout: float | None) -> bytes:
        """Up to `most` bytes, at least one; b"" once the peer is gone and nothing is left."""
        while not self.buffer:
            if not await self._more(timeout):
                self._lost()
                return b""
        piece = bytes(self.buffer[:most])
        del self.buffer[:most]
        return piece


class Framing:
    """How a response body ends, from its request method, status and headers (RFC 9112 §6.3)."""

    def __init__(self, method: str, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        lengths = [v for k, v in headers if k.lower() == b"content-length"]
        codings = [c.strip().lower() for k, v in headers if k.lower() == b"transfer-encoding"
                   for c in v.split(b",")]
        self.chunked = False
        self.length: int | None = None  # None with chunked False: the body ends with the connection
        self.reusable = not (codings and lengths)  # both: a smuggling attempt, or a broken proxy
        if method == "HEAD" or status in (204, 304):
            self.length = 0
        elif codings:
            if codings != [b"chunked"]:
                shown = b", ".join(codings).decode("latin-1")[:60]
                raise httpx.RemoteProtocolError(f"unsupported Transfer-Encoding {shown!r}")
            self.chunked = True
        elif lengths:
            values = {v.strip() for value in lengths for v in value.split(b",")}
            value = values.pop()
            if values or not value.isdigit():
                raise httpx.RemoteProtocolError("invalid Content-Length")
            self.length = int(value)
        else:
            self.reusable = False


def parse_head(head: bytes) -> Head:
    lines = [line.rstrip(b"\r") for line in head.split(b"\n")]
    match = _STATUS.fullmatch(lines[0])
    if match is None:
        raise httpx.RemoteProtocolError("the server's answer is not HTTP/1.x")
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not _TOKEN.fullmatch(name) or not _FIELD_VALUE.fullmatch(value):
            raise httpx.RemoteProtocolError("the server sent a malformed header line")
        headers.append((name, value.strip(b" \t")))
    version = (int(match.group(1)), int(match.group(2)))
    return version, int(match.group(3)), match.group(4) or b"", headers


def keeps_open(version: tuple[int, int], headers: list[tuple[bytes, bytes]]) -> bool:
    tokens = {t.strip().lower() for k, v in headers if k.lower() == b"connection" for t in v.split(b",")}
    return b"close" not in tokens and (version >= (1, 1) or b"keep-alive" in tokens)


def request_bytes(request: httpx.Request, body: bytes) -> bytes:
    """The request line, headers and body; what would break the framing is refused, never sent."""
    method, target = request.method.encode("ascii"), request.url.raw_path
    if not _TOKEN.fullmatch(method) or not _TARGET.fullmatch(target):
        raise httpx.LocalProtocolError("invalid request line")
    if body and request.headers.get("content-length") != str(len(body)):
        raise httpx.LocalProtocolError("a request body goes with its Content-Length")
    lines = [method + b" " + target + b" HTTP/1.1"]
    for name, value in request.headers.raw:
        if not _TOKEN.fullmatch(name) or not _FIELD_VALUE.fullmatch(value):
            raise httpx.LocalProtocolError(f"invalid header {name[:40]!r}")
        if name.lower() == b"transfer-encoding":
            raise httpx.LocalProtocolError("request bodies are sent with a Content-Length")
        lines.append(name + b": " + value)
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


async def plain_body(conn: Connection, length: int | None,
                     timeout: float | None) -> AsyncIterator[bytes]:
    """A body of `length` bytes, or (None) up to the end of the connection, piece by piece."""
    left = length
    while left is None or left > 0:
        piece = await conn.some(_PIECE if left is None else min(left, _PIECE), timeout)
        if not piece:
            if left is None:
                return  # the end of the connection is the end of the body
            raise httpx.RemoteProtocolError(
                "peer closed connection without sending complete message body: "
                f"{left} bytes short of its Content-Length")
        if left is not None:
            left -= len(piece)
        yield piece


async def chunked_body(conn: Connection, timeout: float | None) -> AsyncIterator[bytes]:
    """A chunked body's data, piece by piece; its trailers are read and dropped."""
    while True:
        size_text = (await conn.line(timeout)).split(b";", 1)[0].strip(b" \t")
        if not _CHUNK_SIZE.fullmatch(size_text):
            raise httpx.RemoteProtocolError("chunked body: invalid chunk size")
        left = int(size_text, 16)
        if left == 0:
            break
        while left:
            piece = await conn.some(min(left, _PIECE), timeout)
            if not piece:
                raise httpx.RemoteProtocolError("peer closed connection without sending "
                                                "complete message body (incomplete chunked read)")
            left -= len(piece)
            yield piece
        if await conn.line(timeout):
            raise httpx.RemoteProtocolError("chunked body: no line end after a chunk")
    trailers = 0
    while line := await conn.line(timeout):  # trailers: read and dropped
        trailers += len(line) + 2
        if trailers > MAX_HEAD:
            raise httpx.RemoteProtocolError(f"chunked body: trailers over {MAX_HEAD} bytes")
