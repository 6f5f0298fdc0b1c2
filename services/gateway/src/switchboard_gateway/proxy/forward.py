"""Forward one request to an upstream and stream the answer back, as plain ASGI.

The request body is read whole (bounded by the body-size limit), then sent with the identity headers
the gateway sets. The response is passed through chunk by chunk as the upstream sends it (SSE reaches the
client without buffering); a client that disconnects cancels the upstream request, except during a message
turn: chat finishes a turn whoever listens (the answer is stored), so the gateway reads the rest of the
answer without sending it and the turn's tokens are charged wherever the client left.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import aiohttp
import orjson
import structlog
from aiobreaker import CircuitBreakerError
from starlette.types import Message, Receive, Scope, Send
from yarl import URL

from switchboard_gateway.proxy.h1 import UpstreamConnectionError
from switchboard_gateway.proxy.routes import ProxyRoute, internal_target
from switchboard_gateway.proxy.upstreams import H1Proxy, Upstream
from switchboard_shared.errors import AppError, ErrorCode
from switchboard_shared.request_context import propagation_headers

log = structlog.get_logger(__name__)

# Hop-by-hop headers (RFC 9110 §7.6.1) plus everything the gateway sets itself or must not leak upstream.
DROPPED_REQUEST_HEADERS = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"content-length",
        b"expect",
        b"cookie",
        b"authorization",
        b"x-api-key",
        b"x-internal-token",
        b"x-tenant-id",
        b"x-end-user-id",
        b"x-end-user-verified",
        b"x-end-user-claims",
        b"x-end-user-token",
        b"x-anonymous-id",
        b"x-key-scope",
        b"x-request-id",
        b"traceparent",
        b"tracestate",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
    }
)
DROPPED_RESPONSE_HEADERS = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"date",
        b"server",
        b"x-request-id",
        b"set-cookie",
    }
)
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
TEE_LIMIT = 512 * 1024


@dataclass(slots=True)
class Forwarded:
    """What the caller may want after the response went out (token accounting of message turns)."""

    status: int
    content_type: str
    body: bytes | None


class ClientGone(Exception):
    """The client disconnected before its request body arrived."""


async def read_body(receive: Receive, limit: int | None = None) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if limit is not None and size > limit:
            raise AppError(ErrorCode.PAYLOAD_TOO_LARGE, f"The body exceeds {limit} bytes.")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def upstream_headers(
    scope: Scope, identity: dict[str, str], internal_token: str
) -> list[tuple[bytes, bytes]]:
    headers = [(name, value) for name, value in scope["headers"] if name not in DROPPED_REQUEST_HEADERS]
    if not any(name == b"accept-encoding" for name, _ in headers):
        headers.append((b"accept-encoding", b"identity"))  # never offer compression the client did not
    headers.append((b"x-internal-token", internal_token.encode()))
    headers.extend((name.encode(), value.encode()) for name, value in identity.items())
    headers.extend((name.encode(), value.encode()) for name, value in propagation_headers().items())
    client = scope.get("client")
    if client:
        headers.append((b"x-forwarded-for", client[0].encode()))
    headers.append((b"x-forwarded-proto", scope.get("scheme", "http").encode()))
    return headers


class ProxyResponse(Protocol):
    status: int
    raw_headers: list[tuple[bytes, bytes]]
    content_length: int | None

    def header(self, name: bytes) -> str: ...

    async def read(self, timeout: float) -> bytes: ...

    def iter_chunks(self, timeout: float) -> AsyncIterator[bytes]: ...

    def release(self) -> None: ...

    def close(self) -> None: ...


class AiohttpResponse:
    """An aiohttp response seen through ``ProxyResponse`` (the ``aiohttp`` proxy client setting)."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response
        self.status = response.status
        self.raw_headers = [(name.lower(), value) for name, value in response.raw_headers]
        self.content_length = response.content_length

    def header(self, name: bytes) -> str:
        return self.response.headers.get(name.decode(), "")

    async def read(self, timeout: float) -> bytes:  # noqa: ARG002 - aiohttp applies its own sock_read
        return await self.response.read()

    async def iter_chunks(self, timeout: float) -> AsyncIterator[bytes]:  # noqa: ARG002
        async for chunk in self.response.content.iter_any():
            yield chunk

    def release(self) -> None:
        self.response.release()

    def close(self) -> None:
        self.response.close()


async def forward(
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    upstream: Upstream,
    route: ProxyRoute,
    identity: dict[str, str],
    internal_token: str,
    extra_response_headers: list[tuple[bytes, bytes]],
    body: bytes | None = None,
    body_limit: int | None = None,
    keep_body: Callable[[str], bool] | None = None,
) -> Forwarded | None:
    """Proxy the request; raises AppError (503/504) only before the response has started."""
    method: str = scope["method"]
    if body is None:
        body = await read_body(receive, body_limit)
    target = internal_target(scope.get("raw_path") or scope["path"].encode(), scope["query_string"])
    headers = upstream_headers(scope, identity, internal_token)
    read_timeout = upstream.read_timeouts[route.timeout]

    proxy = upstream.proxy
    if isinstance(proxy, H1Proxy):
        pool = proxy.pool
        timeouts = proxy.timeouts[route.timeout]

        async def open_response() -> ProxyResponse:
            return await pool.request(method, target, headers, body or b"", timeouts)

    else:
        url = URL(upstream.base_url + target.decode("latin-1"), encoded=True)
        str_headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers]
        session = proxy.session
        timeout = proxy.timeouts[route.timeout]

        async def open_response() -> ProxyResponse:
            response = await session.request(
                method, url, data=body or None, headers=str_headers, timeout=timeout, allow_redirects=False
            )
            return AiohttpResponse(response)

    # A message turn is read to its end even when the client leaves (its tokens are charged).
    watch = DisconnectWatch(receive, cancel=False) if route.message_turn else None
    try:
        response = await _open(upstream, open_response, idempotent=method in IDEMPOTENT)
        try:
            return await _relay(
                response, send, receive, upstream, extra_response_headers, keep_body, watch, read_timeout
            )
        finally:
            response.release()
    finally:
        if watch is not None:
            if watch.disconnected:
                log.info("client_disconnected_turn_read_to_end", upstream=upstream.name)
            watch.stop()


class DisconnectWatch:
    """Notes when the client goes away and (``cancel``) cancels the request's task, so the upstream call is
    dropped too."""

    def __init__(self, receive: Receive, *, cancel: bool = True) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.task = task
        self.receive = receive
        self.cancel = cancel
        self.disconnected = False
        self.watcher = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            message: Message = await self.receive()
            if message["type"] == "http.disconnect":
                self.disconnected = True
                if self.cancel:
                    self.task.cancel()
                return

    def stop(self) -> None:
        self.watcher.cancel()


async def _open(
    upstream: Upstream, open_response: Callable[[], Awaitable[ProxyResponse]], *, idempotent: bool
) -> ProxyResponse:
    attempts = 2
    for attempt in range(attempts):
        try:
            response: ProxyResponse = await upstream.breaker.call_async(open_response)
            return response
        except CircuitBreakerError as exc:
            raise AppError(
                ErrorCode.UPSTREAM_UNAVAILABLE,
                f"The {upstream.name} service is unavailable (circuit open); try again shortly.",
                headers={"Retry-After": str(max(1, int(upstream.reset_seconds)))},
            ) from exc
        except TimeoutError as exc:
            raise AppError(
                ErrorCode.UPSTREAM_TIMEOUT, f"The {upstream.name} service did not answer in time."
            ) from exc
        except UpstreamConnectionError as exc:
            # A pooled connection the upstream closed while idle: an idempotent call is sent once more, and
            # so is any call none of whose bytes left.
            if attempt + 1 < attempts and exc.before_response and exc.reused and (idempotent or not exc.sent):
                continue
            raise _unavailable(upstream) from exc
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
            if idempotent and attempt + 1 < attempts and not isinstance(exc, aiohttp.ClientConnectorError):
                continue
            raise _unavailable(upstream) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise _unavailable(upstream) from exc
    raise _unavailable(upstream)


def _unavailable(upstream: Upstream) -> AppError:
    return AppError(
        ErrorCode.UPSTREAM_UNAVAILABLE,
        f"The {upstream.name} service is unavailable.",
        headers={"Retry-After": "5"},
    )


STREAM_ERRORS = (aiohttp.ClientError, UpstreamConnectionError, TimeoutError)


async def _relay(
    response: ProxyResponse,
    send: Send,
    receive: Receive,
    upstream: Upstream,
    extra_headers: list[tuple[bytes, bytes]],
    keep_body: Callable[[str], bool] | None,
    watch: DisconnectWatch | None,
    read_timeout: float,
) -> Forwarded | None:
    out_headers = [
        (name, value) for name, value in response.raw_headers if name not in DROPPED_RESPONSE_HEADERS
    ]
    if any(name == b"cache-control" for name, _ in extra_headers):
        # The public API's caching rule (never stored) replaces the service's own (a stream's no-cache):
        # one Cache-Control, not two that disagree.
        out_headers = [header for header in out_headers if header[0] != b"cache-control"]
    out_headers.extend(extra_headers)
    content_type = response.header(b"content-type")
    keep = keep_body is not None and keep_body(content_type)
    if response.content_length is not None and watch is None:
        # Small, complete answers: one read, one send, no watcher task.
        try:
            payload = await response.read(read_timeout)
        except STREAM_ERRORS as exc:
            raise AppError(
                ErrorCode.UPSTREAM_ERROR, f"The {upstream.name} service broke off its answer."
            ) from exc
        await send({"type": "http.response.start", "status": response.status, "headers": out_headers})
        await send({"type": "http.response.body", "body": payload})
        return Forwarded(response.status, content_type, payload if keep else None)
    if watch is not None:
        return await _stream(response, send, upstream, out_headers, content_type, keep, read_timeout, watch)
    own_watch = DisconnectWatch(receive)
    try:
        return await _stream(response, send, upstream, out_headers, content_type, keep, read_timeout, None)
    except asyncio.CancelledError:
        if not own_watch.disconnected:
            raise
        own_watch.task.uncancel()
        log.info("client_disconnected", upstream=upstream.name)
        return None
    finally:
        own_watch.stop()


async def _stream(
    response: ProxyResponse,
    send: Send,
    upstream: Upstream,
    out_headers: list[tuple[bytes, bytes]],
    content_type: str,
    keep: bool,
    read_timeout: float,
    drain: DisconnectWatch | None,
) -> Forwarded:
    """Relay the body; with ``drain``, a client that left stops getting chunks but the body is still read
    (and kept) to its end."""
    tee: list[bytes] = []
    kept = 0

    async def relay(message: Message) -> None:
        if drain is not None and drain.disconnected:
            return
        try:
            await send(message)
        except OSError:
            if drain is None:
                raise
            drain.disconnected = True

    await relay({"type": "http.response.start", "status": response.status, "headers": out_headers})
    try:
        async for chunk in response.iter_chunks(read_timeout):
            if keep and kept < TEE_LIMIT:
                tee.append(chunk)
                kept += len(chunk)
            await relay({"type": "http.response.body", "body": chunk, "more_body": True})
    except STREAM_ERRORS as exc:
        log.warning("upstream_stream_broken", upstream=upstream.name, error=type(exc).__name__)
        response.close()
        if not content_type.startswith("text/event-stream"):
            raise  # the client sees a cut-off body, never a truncated answer that looks complete
        packet = orjson.dumps(
            {"type": "error", "code": "upstream_error", "message": f"{upstream.name} broke off the stream"}
        )
        await relay({"type": "http.response.body", "body": b"event: error\ndata: " + packet + b"\n\n"})
        return Forwarded(response.status, content_type, b"".join(tee) if keep else None)
    await relay({"type": "http.response.body", "body": b""})
    return Forwarded(response.status, content_type, b"".join(tee) if keep else None)
