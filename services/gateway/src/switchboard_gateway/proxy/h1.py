"""A lean HTTP/1.1 keep-alive client for the proxy hot path: asyncio protocol + httptools parser.

Why not aiohttp here: measured on the gateway's proxy path, aiohttp's client machinery (request and
response objects, header multidicts, auto headers, stream readers) was about half of the gateway's CPU
per proxied request. This client does only what a reverse proxy needs — write the request bytes, parse
the response head, hand body chunks over as they arrive (SSE passes through unbuffered), reuse the
connection — and keeps aiohttp's guarantees that matter: timeouts, flow control, no cookies, no
decompression. It speaks to the fleet's own services only (plain HTTP on a private network).
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import cast

import httptools

MAX_BUFFERED = 1 << 20  # pause reading the upstream when this much body waits for a slow client


class UpstreamConnectionError(Exception):
    """The connection failed or closed before the response was complete."""

    def __init__(self, message: str, *, before_response: bool, reused: bool, sent: bool = True) -> None:
        super().__init__(message)
        self.before_response = before_response
        self.reused = reused
        self.sent = sent  # False: no byte of the request left, so any method may be sent again


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float
    read: float


class H1Connection(asyncio.Protocol):
    def __init__(self, pool: H1Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = time.monotonic()
        self.uses = 0
        self.response: H1Response | None = None
        self._header_name = b""

    # --- asyncio.Protocol ---
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(f"malformed response: {exc}")
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        response = self.response
        if response is not None and not response.complete:
            if response.head.done() and response.read_until_close:
                response._finish()
            else:
                self._fail(f"connection closed: {exc or 'by the upstream'}")

    # --- httptools callbacks ---
    def on_header(self, name: bytes, value: bytes) -> None:
        if self.response is not None:
            self.response.raw_headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        response = self.response
        if response is None:
            return
        response.status = self.parser.get_status_code()
        response.keep_alive = self.parser.should_keep_alive()
        length = None
        chunked = False
        for name, value in response.raw_headers:
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        response.content_length = length
        response.read_until_close = length is None and not chunked and response.status not in (204, 304)
        if not response.head.done():
            response.head.set_result(None)
        if response.method == "HEAD":
            response.keep_alive = False  # the parser would wait for a body that never comes
            response._finish()

    def on_body(self, body: bytes) -> None:
        response = self.response
        if response is not None and not response.complete:
            response._push(bytes(body))

    def on_message_complete(self) -> None:
        if self.response is not None and not self.response.complete:
            self.response._finish()

    # --- helpers ---
    def _fail(self, message: str) -> None:
        response = self.response
        if response is None or response.complete:
            return
        error = UpstreamConnectionError(
            message, before_response=not response.head.done(), reused=self.uses > 1
        )
        response._fail(error)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def pause(self) -> None:
        if self.transport is not None:
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()


class H1Response:
    def __init__(self, connection: H1Connection, method: str) -> None:
        self.connection = connection
        self.method = method
        self.head: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.status = 0
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.content_length: int | None = None
        self.keep_alive = False
        self.read_until_close = False
        self.complete = False
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._error: Exception | None = None
        self._released = False

    def header(self, name: bytes) -> str:
        for key, value in self.raw_headers:
            if key == name:
                return value.decode("latin-1")
        return ""

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _push(self, chunk: bytes) -> None:
        self._chunks.append(chunk)
        self._buffered += len(chunk)
        if self._buffered > MAX_BUFFERED and not self._paused:
            self._paused = True
            self.connection.pause()
        self._wake()

    def _finish(self) -> None:
        self.complete = True
        self._wake()

    def _fail(self, error: Exception) -> None:
        self._error = error
        if not self.head.done():
            self.head.set_exception(error)
        self._wake()

    async def _next(self, timeout: float) -> bytes | None:
        while not self._chunks:
            if self._error is not None:
                raise self._error
            if self.complete:
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            async with asyncio.timeout(timeout):
                await self._waiter
            self._waiter = None
        chunk = self._chunks.popleft()
        self._buffered -= len(chunk)
        if self._paused and self._buffered < MAX_BUFFERED // 2:
            self._paused = False
            self.connection.resume()
        return chunk

    async def read(self, timeout: float) -> bytes:
        parts = []
        while (chunk := await self._next(timeout)) is not None:
            parts.append(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def iter_chunks(self, timeout: float) -> AsyncIterator[bytes]:
        while (chunk := await self._next(timeout)) is not None:
            yield chunk

    def release(self) -> None:
        """Give the connection back to the pool when the exchange finished cleanly, else close it."""
        if self._released:
            return
        self._released = True
        connection = self.connection
        connection.response = None
        if self.complete and self._error is None and self.keep_alive and not connection.closed:
            connection.pool._put(connection)
        else:
            connection.close()
            connection.pool.slots.release()

    def close(self) -> None:
        self.keep_alive = False
        self.release()


class H1Pool:
    """Keep-alive connections to one upstream (host, port); idle ones older than ``max_idle`` are dropped
    before the upstream's own keep-alive timeout can close them under a request."""

    def __init__(self, host: str, port: int, *, limit: int, max_idle: float) -> None:
        self.host = host
        self.port = port
        self.host_header = f"{host}:{port}".encode()
        self.max_idle = max_idle
        self.idle: list[H1Connection] = []
        self.slots = asyncio.Semaphore(limit)

    def _put(self, connection: H1Connection) -> None:
        connection.idle_since = time.monotonic()
        self.idle.append(connection)
        self.slots.release()

    async def _acquire(self, connect_timeout: float) -> H1Connection:
        await self.slots.acquire()
        now = time.monotonic()
        while self.idle:
            connection = self.idle.pop()
            if not connection.closed and now - connection.idle_since < self.max_idle:
                return connection
            connection.close()
        try:
            async with asyncio.timeout(connect_timeout):
                _, protocol = await asyncio.get_running_loop().create_connection(
                    lambda: H1Connection(self), self.host, self.port
                )
        except BaseException:
            self.slots.release()
            raise
        return protocol

    async def request(
        self,
        method: str,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        timeouts: Timeouts,
    ) -> H1Response:
        """Send the request and wait for the response head; the caller reads the body, then ``release()``."""
        connection = await self._acquire(timeouts.connect)
        connection.uses += 1
        response = H1Response(connection, method)
        connection.response = response
        head = [method.encode(), b" ", target, b" HTTP/1.1\r\nhost: ", self.host_header, b"\r\n"]
        for name, value in headers:
            head += [name, b": ", value, b"\r\n"]
        if body or method in ("POST", "PUT", "PATCH"):
            head += [b"content-length: ", str(len(body)).encode(), b"\r\n"]
        head.append(b"\r\n")
        if body:
            head.append(body)
        try:
            if connection.closed or connection.transport is None:
                raise UpstreamConnectionError(
                    "connection closed before the request",
                    before_response=True,
                    reused=connection.uses > 1,
                    sent=False,
                )
            connection.transport.write(b"".join(head))
            async with asyncio.timeout(timeouts.read):
                await response.head
        except BaseException:
            response.close()
            raise
        return response

    def close(self) -> None:
        for connection in self.idle:
            connection.close()
        self.idle.clear()
