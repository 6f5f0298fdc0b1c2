"""Per-request context (request id, traceparent) carried in contextvars across awaits."""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
traceparent_var: ContextVar[str | None] = ContextVar("traceparent", default=None)

TRACEPARENT_RE = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def current_request_id() -> str | None:
    return request_id_var.get()


def new_request_id() -> str:
    return secrets.token_hex(16)


def valid_request_id(value: str | None) -> bool:
    return bool(value) and REQUEST_ID_RE.match(value or "") is not None


def child_traceparent(parent: str | None) -> str:
    """The traceparent for an outbound call: same trace id, a new span id (W3C Trace Context)."""
    match = TRACEPARENT_RE.match(parent or "")
    trace_id = match.group(1) if match and match.group(1) != "0" * 32 else secrets.token_hex(16)
    flags = match.group(3) if match else "01"
    return f"00-{trace_id}-{secrets.token_hex(8)}-{flags}"


def propagation_headers() -> dict[str, str]:
    """Headers that carry the current request's identity to the next hop."""
    headers: dict[str, str] = {}
    request_id = request_id_var.get()
    if request_id:
        headers["X-Request-ID"] = request_id
    headers["traceparent"] = child_traceparent(traceparent_var.get())
    return headers
