"""HTTP/1.1 on asyncio's own sockets under httpx: connections, TLS, message framing, the pool.

fetch.py decides what is asked where and what is read; this is the wire below it, in place of
httpx's default stack (httpcore, h11, anyio), whose import alone cost a one-shot `syncd once`
about as much as all of syncd's own work. It speaks what fetch.py needs: one request at a time
per connection; bodies framed by Content-Length, chunked, or the end of the connection;
keep-alive in a bounded pool; TLS verified with httpx's own context (certifi, or SSL_CERT_FILE /
SSL_CERT_DIR), built on first https use. Each failure is the httpx exception httpx's own stack
raises for it, with the OS or TLS error as its cause. No proxies, as before: a client given its
own transport never read them from the environment.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    import ssl

MAX_HEAD = 100 * 1024  # status line + headers, and a chunked body's trailers (h11 under httpx: same)
MAX_LINE = 8 * 1024  # one chunk-size line
_PIECE = 64 * 1024  # most bytes handed up at once
_HIGH_WATER = 1024 * 1024  # buffered and unread: stop reading the socket until it drains
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_LINE_END = re.compile(rb"\r?\n")
_STATUS = re.compile(rb"HTTP/(\d)\.(\d) ([1-9]\d\d)(?: ([^\r\n]*))?")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(rb"[^\x00\r\n]*")
_TARGET = re.compile(rb"[!-~]+")
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")

Origin = tuple[str, str, int]
Head = tuple[tuple[int, int], int, bytes, list[tuple[bytes, bytes]]]


class _Connection(asyncio.Protocol):
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
        if len(self.buffer) > _HIGH_WATER and not self._reading_paused and self.transport:
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


class _Framing:
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


def _parse_head(head: bytes) -> Head:
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


def _keeps_open(version: tuple[int, int], headers: list[tuple[bytes, bytes]]) -> bool:
    tokens = {t.strip().lower() for k, v in headers if k.lower() == b"connection" for t in v.split(b",")}
    return b"close" not in tokens and (version >= (1, 1) or b"keep-alive" in tokens)


def _request_bytes(request: httpx.Request, body: bytes) -> bytes:
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


class _Body(httpx.AsyncByteStream):
    """A response body as it arrives; closing it gives the connection back, or ends it."""

    def __init__(self, pool: Http11Transport, conn: _Connection, framing: _Framing, keep: bool,
                 timeout: float | None) -> None:
        self._pool, self._conn, self._framing = pool, conn, framing
        self._keep, self._timeout = keep, timeout
        self._complete = False
        self._released = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        pieces = self._chunked() if self._framing.chunked else self._plain()
        try:
            async for piece in pieces:
                yield piece
        except BaseException:
            self._release()
            raise
        self._complete = True

    async def _plain(self) -> AsyncIterator[bytes]:
        left = self._framing.length
        while left is None or left > 0:
            piece = await self._conn.some(_PIECE if left is None else min(left, _PIECE), self._timeout)
            if not piece:
                if left is None:
                    return  # the end of the connection is the end of the body
                raise httpx.RemoteProtocolError(
                    "peer closed connection without sending complete message body: "
                    f"{left} bytes short of its Content-Length")
            if left is not None:
                left -= len(piece)
            yield piece

    async def _chunked(self) -> AsyncIterator[bytes]:
        conn, timeout = self._conn, self._timeout
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

    async def aclose(self) -> None:
        self._release()
        if self._conn.transport is not None and self._conn.transport.is_closing():
            await asyncio.sleep(0)  # asyncio closes the socket on its next turn: let it come now

    def _release(self) -> None:
        if not self._released:
            self._released = True
            keep = self._complete and self._keep and self._framing.reusable
            self._pool.release(self._conn, reusable=keep)


class Http11Transport(httpx.AsyncBaseTransport):
    """HTTP/1.1 for http:// and https:// URLs, at most `max_connections` open at once.

    Idle connections are kept (at most `max_keepalive`, for `keepalive_expiry` seconds) for the
    next request to the same origin; one the server closed meanwhile costs a retry on a new
    connection, never an error. A request that finds every connection busy waits for one up to
    its `pool` timeout. `ssl_context`: for tests; by default httpx's verifying context.
    """

    def __init__(self, *, max_connections: int = 200, max_keepalive: int = 50,
                 keepalive_expiry: float = 5.0, ssl_context: ssl.SSLContext | None = None) -> None:
        self._max = max_connections
        self._max_idle = max_keepalive
        self._expiry = keepalive_expiry
        self._ssl = ssl_context
        self._idle: deque[_Connection] = deque()  # oldest first
        self._open = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"{url.scheme!r} URLs are not supported")
        if not url.raw_host:
            raise httpx.UnsupportedProtocol("the URL has no host")
        stream = request.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        data = _request_bytes(request, b"".join([part async for part in stream]))
        timeouts: Mapping[str, Any] = request.extensions.get("timeout", {})
        origin = (url.scheme, url.raw_host.decode("ascii"),
                  url.port or (443 if url.scheme == "https" else 80))
        while True:
            conn = await self._acquire(origin, timeouts.get("connect"), timeouts.get("pool"))
            try:
                answer = await self._answer(conn, data, timeouts)
                if answer is not None:
                    version, status, reason, headers = answer
                    framing = _Framing(request.method, status, headers)
                    break
            except BaseException:
                self.release(conn, reusable=False)
                raise
            self.release(conn, reusable=False)  # a kept connection the server had closed: again
        keep = (_keeps_open(version, headers)
                and "close" not in request.headers.get("connection", "").lower())
        return httpx.Response(status, headers=headers, stream=_Body(self, conn, framing, keep,
                                                                     timeouts.get("read")),
                              extensions={"http_version": b"HTTP/%d.%d" % version,
                                          "reason_phrase": reason})

    async def _answer(self, conn: _Connection, data: bytes, timeouts: Mapping[str, Any]) -> Head | None:
        """Send the request and read the final answer's head; None: a kept connection that the
        server closed before this request reached it (nothing of an answer came back)."""
        before = conn.received
        try:
            await conn.send(data, timeouts.get("write"))
            while True:
                raw = await conn.head(timeouts.get("read"))
                if raw is None:
                    if conn.reused:
                        return None
                    raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
                head = _parse_head(raw)
                if head[1] == 101:
                    raise httpx.RemoteProtocolError("the server switched protocols unasked")
                if head[1] >= 200:
                    return head  # 1xx: an interim answer, the final one follows
        except (httpx.WriteError, httpx.ReadError):
            if conn.reused and conn.received == before:
                return None
            raise

    async def _acquire(self, origin: Origin, connect: float | None, pool: float | None) -> _Connection:
        loop = asyncio.get_running_loop()
        deadline = None if pool is None else loop.time() + pool
        while True:
            if self._closed:
                raise httpx.ConnectError("the HTTP client is closed")
            now = loop.time()
            for conn in list(self._idle):  # past their time, or closed by the peer meanwhile
                if now - conn.idle_since > self._expiry or not conn.reusable():
                    self._drop(conn)
            for conn in reversed(self._idle):
                if conn.origin == origin:
                    self._idle.remove(conn)
                    conn.reused = True
                    return conn
            if self._open >= self._max and self._idle:
                self._drop(self._idle[0])  # another origin's idle connection makes room
            if self._open < self._max:
                self._open += 1
                try:
                    return await self._connect(origin, connect)
                except BaseException:
                    self._closed_one()
                    raise
            waiter = loop.create_future()
            self._waiters.append(waiter)
            try:
                async with asyncio.timeout_at(deadline):
                    await waiter
            except TimeoutError:
                raise httpx.PoolTimeout("no free connection") from None
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    async def _connect(self, origin: Origin, timeout: float | None) -> _Connection:
        scheme, host, port = origin
        context = self._context() if scheme == "https" else None
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                _, conn = await loop.create_connection(
                    lambda: _Connection(origin), host, port, ssl=context,
                    server_hostname=host if context is not None else None, happy_eyeballs_delay=0.25)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"no connection within {timeout:g}s") from None
        except OSError as exc:  # TLS failures too: ssl.SSLError is an OSError
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc
        return conn

    def _context(self) -> ssl.SSLContext:
        if self._ssl is None:
            context = httpx.create_ssl_context()  # verifying: certifi, or SSL_CERT_FILE / _DIR
            context.set_alpn_protocols(["http/1.1"])
            self._ssl = context
        return self._ssl

    def release(self, conn: _Connection, *, reusable: bool) -> None:
        """A request is done with `conn`: keep it for the next one, or close it."""
        if reusable and not self._closed and conn.reusable():
            conn.idle_since = asyncio.get_running_loop().time()
            self._idle.append(conn)
            while len(self._idle) > self._max_idle:
                self._drop(self._idle[0])
            self._wake_one()
        else:
            conn.close()
            self._closed_one()

    def _drop(self, conn: _Connection) -> None:
        self._idle.remove(conn)
        conn.close()
        self._closed_one()

    def _closed_one(self) -> None:
        self._open -= 1
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def aclose(self) -> None:
        self._closed = True
        while self._idle:
            self._drop(self._idle[0])
