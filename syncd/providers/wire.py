"""httpx's transport for fetch.py: HTTP/1.1 connections on asyncio's own sockets, TLS, the pool.

fetch.py decides what is asked where and what is read; this is the wire below it, in place of
httpx's default stack (httpcore, h11, anyio), whose import alone cost a one-shot `syncd once`
about as much as all of syncd's own work. It speaks what fetch.py needs: one request at a time
per connection; bodies framed by Content-Length, chunked, or the end of the connection;
keep-alive in a bounded pool; TLS verified with httpx's own context (certifi, or SSL_CERT_FILE /
SSL_CERT_DIR), built on first https use. Each failure is the httpx exception httpx's own stack
raises for it, with the OS or TLS error as its cause. No proxies, as before: a client given its
own transport never read them from the environment. The messages themselves: http11.py.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

import httpx

from syncd.providers.http11 import (
    Connection,
    Framing,
    Head,
    Origin,
    chunked_body,
    keeps_open,
    parse_head,
    plain_body,
    request_bytes,
)

if TYPE_CHECKING:
    import ssl


class _Body(httpx.AsyncByteStream):
    """A response body as it arrives; closing it gives the connection back, or ends it."""

    def __init__(self, pool: Http11Transport, conn: Connection, framing: Framing, keep: bool,
                 timeout: float | None) -> None:
        self._pool, self._conn, self._framing = pool, conn, framing
        self._keep, self._timeout = keep, timeout
        self._complete = False
        self._released = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        framing = self._framing
        pieces = (chunked_body(self._conn, self._timeout) if framing.chunked
                  else plain_body(self._conn, framing.length, self._timeout))
        try:
            async for piece in pieces:
                yield piece
        except BaseException:
            self._release()
            raise
        self._complete = True

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
    connection, never an error (syncd only reads: any request it sends may be sent again). A
    request that finds every connection busy waits for one up to its `pool` timeout.
    `ssl_context`: for tests; by default httpx's verifying context.
    """

    def __init__(self, *, max_connections: int = 200, max_keepalive: int = 50,
                 keepalive_expiry: float = 5.0, ssl_context: ssl.SSLContext | None = None) -> None:
        self._max = max_connections
        self._max_idle = max_keepalive
        self._expiry = keepalive_expiry
        self._ssl = ssl_context
        self._idle: deque[Connection] = deque()  # oldest first
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
        data = request_bytes(request, b"".join([part async for part in stream]))
        timeouts: Mapping[str, Any] = request.extensions.get("timeout", {})
        origin = (url.scheme, url.raw_host.decode("ascii"),
                  url.port or (443 if url.scheme == "https" else 80))
        while True:
            conn = await self._acquire(origin, timeouts.get("connect"), timeouts.get("pool"))
            try:
                answer = await self._answer(conn, data, timeouts)
                if answer is not None:
                    version, status, reason, headers = answer
                    framing = Framing(request.method, status, headers)
                    break
            except BaseException:
                self.release(conn, reusable=False)
                raise
            self.release(conn, reusable=False)  # a kept connection the server had closed: again
        keep = (keeps_open(version, headers)
                and "close" not in request.headers.get("connection", "").lower())
        return httpx.Response(status, headers=headers, stream=_Body(self, conn, framing, keep,
                                                                     timeouts.get("read")),
                              extensions={"http_version": b"HTTP/%d.%d" % version,
                                          "reason_phrase": reason})

    async def _answer(self, conn: Connection, data: bytes, timeouts: Mapping[str, Any]) -> Head | None:
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
                head = parse_head(raw)
                if head[1] == 101:
                    raise httpx.RemoteProtocolError("the server switched protocols unasked")
                if head[1] >= 200:
                    return head  # 1xx: an interim answer, the final one follows
        except (httpx.WriteError, httpx.ReadError):
            if conn.reused and conn.received == before:
                return None
            raise

    async def _acquire(self, origin: Origin, connect: float | None, pool: float | None) -> Connection:
        loop = asyncio.get_running_loop()
        deadline = None if pool is None else loop.time() + pool
        while True:
            if self._closed:
                raise httpx.ConnectError("the HTTP client is closed")
            now = time.monotonic()
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

    async def _connect(self, origin: Origin, timeout: float | None) -> Connection:
        scheme, host, port = origin
        context = self._context() if scheme == "https" else None
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                _, conn = await loop.create_connection(
                    lambda: Connection(origin), host, port, ssl=context,
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

    def release(self, conn: Connection, *, reusable: bool) -> None:
        """A request is done with `conn`: keep it for the next one, or close it."""
        if reusable and not self._closed and conn.reusable():
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
            while len(self._idle) > self._max_idle:
                self._drop(self._idle[0])
            self._wake_one()
        else:
            conn.close()
            self._closed_one()

    def _drop(self, conn: Connection) -> None:
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
