"""Pure ASGI middleware: request context and access log, body size limit, internal-route authentication."""

from __future__ import annotations

import hmac
import time
from typing import Any

import orjson
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from switchboard_shared.errors import (
    STORAGE_UNAVAILABLE_MESSAGE,
    ErrorCode,
    error_payload,
    storage_unavailable,
)
from switchboard_shared.metrics import HTTP_IN_FLIGHT, HTTP_LATENCY, HTTP_REQUESTS
from switchboard_shared.request_context import (
    TRACEPARENT_RE,
    child_traceparent,
    new_request_id,
    request_id_var,
    traceparent_var,
    valid_request_id,
)

access_log = structlog.get_logger("switchboard.access")
INTERNAL_TOKEN_HEADER = "x-internal-token"
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            decoded: str = value.decode("latin-1")
            return decoded
    return None


async def send_error(
    send: Send, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> None:
    body = orjson.dumps(error_payload(code, message))
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


class RequestContextMiddleware:
    """Accepts or makes the request id, continues the W3C trace, logs access and records metrics."""

    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming_id = header(scope, b"x-request-id")
        request_id = incoming_id if incoming_id and valid_request_id(incoming_id) else new_request_id()
        incoming_trace = header(scope, b"traceparent")
        traceparent = (
            incoming_trace
            if incoming_trace and TRACEPARENT_RE.match(incoming_trace)
            else child_traceparent(None)
        )
        rid_token = request_id_var.set(request_id)
        tp_token = traceparent_var.set(traceparent)
        structlog.contextvars.bind_contextvars(request_id=request_id, traceparent=traceparent)
        started = time.perf_counter()
        status_holder = [500]
        method = scope.get("method", "")
        in_flight = HTTP_IN_FLIGHT.labels(self.service)
        in_flight.inc()

        response_started = [False]

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_started[0] = True
                status_holder[0] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
                route = _route_template(scope)
                HTTP_LATENCY.labels(self.service, method, route).observe(time.perf_counter() - started)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            # Handled here rather than in Starlette's outermost ServerErrorMiddleware so the 500 still
            # carries the request id, in the body and the header.
            if storage_unavailable(exc):
                access_log.error("storage_unavailable", error_type=type(exc).__name__, error=str(exc)[:300])
                if not response_started[0]:
                    await send_error(
                        send_with_id,
                        503,
                        ErrorCode.SERVICE_UNAVAILABLE,
                        STORAGE_UNAVAILABLE_MESSAGE,
                        headers={"Retry-After": "5"},
                    )
            else:
                access_log.error("unhandled_error", error_type=type(exc).__name__, exc_info=exc)
                if not response_started[0]:
                    await send_with_id_error(send_with_id)
        finally:
            in_flight.dec()
            route = _route_template(scope)
            HTTP_REQUESTS.labels(self.service, method, route, str(status_holder[0])).inc()
            if scope.get("path") not in QUIET_PATHS:
                access_log.info(
                    "request",
                    method=method,
                    path=scope.get("path"),
                    status=status_holder[0],
                    duration_ms=round((time.perf_counter() - started) * 1000, 2),
                )
            structlog.contextvars.unbind_contextvars("request_id", "traceparent")
            request_id_var.reset(rid_token)
            traceparent_var.reset(tp_token)


async def send_with_id_error(send: Send) -> None:
    await send_error(send, 500, ErrorCode.INTERNAL_ERROR, "An unexpected error occurred.")


def _route_template(scope: Scope) -> str:
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"


class BodyTooLarge(Exception):
    pass


class BodySizeLimitMiddleware:
    """Refuses bodies over the limit with 413, by Content-Length up front or by counting streamed bytes."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, overrides: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.overrides = overrides or {}

    def _limit_for(self, path: str) -> int:
        for prefix, limit in self.overrides.items():
            if path.startswith(prefix):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit_for(scope.get("path", ""))
        declared = header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await send_error(send, 413, ErrorCode.PAYLOAD_TOO_LARGE, f"The body exceeds {limit} bytes.")
            return
        received = 0
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not response_started:
                await send_error(send, 413, ErrorCode.PAYLOAD_TOO_LARGE, f"The body exceeds {limit} bytes.")


class InternalAuthMiddleware:
    """Every /internal/ route needs the fleet's internal token (constant-time comparison)."""

    def __init__(self, app: ASGIApp, *, token: str, prefix: str = "/internal/") -> None:
        self.app = app
        self.token = token.encode()
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path", "").startswith(self.prefix):
            presented = (header(scope, INTERNAL_TOKEN_HEADER.encode()) or "").encode("latin-1")
            if not hmac.compare_digest(presented, self.token):
                await send_error(
                    send, 401, ErrorCode.UNAUTHORIZED, "A valid internal service token is required."
                )
                return
        await self.app(scope, receive, send)
