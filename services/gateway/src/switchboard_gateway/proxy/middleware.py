"""The gateway's two ASGI layers around the shared middleware (one stack, ``switchboard_shared.app``):

- ``ProxyMiddleware``, right inside the request context: answers every proxy route itself (key, origin,
  identity, limits and budget, body limit, security headers), forwarding it straight to its upstream, so a
  proxied request runs none of the layers below and no FastAPI routing; everything else passes on down.
- ``GatewayMiddleware``, innermost: authenticates the gateway's own ``/v1`` endpoints (the OpenAI-compatible
  API) and hands them to FastAPI with the caller in ``request.state.principal``. The admin API
  authenticates itself (its own dependencies)."""

from __future__ import annotations

import re
from typing import Any

import orjson
import structlog
from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from switchboard_gateway.auth.identity import InvalidIdentity, valid_subject, verify_identity
from switchboard_gateway.auth.origins import origin_allowed
from switchboard_gateway.auth.principal import Principal, presented_credential
from switchboard_gateway.keys.secrets import KeyScope
from switchboard_gateway.openai_compat.errors import send_openai_error
from switchboard_gateway.proxy.forward import ClientGone, forward, read_body
from switchboard_gateway.proxy.routes import (
    PUBLIC_PREFIX,
    ProxyRoute,
    area_of,
    resolve,
    safe_path,
    widget_allowed,
)
from switchboard_gateway.runtime import Runtime
from switchboard_shared.contracts.chat import DonePacket, TokenPacket, TurnUsage, decode_sse_body
from switchboard_shared.contracts.common import strip_control_characters
from switchboard_shared.contracts.routes import (
    END_USER_CLAIMS_HEADER,
    END_USER_HEADER,
    END_USER_VERIFIED_HEADER,
    KEY_SCOPE_HEADER,
    TENANT_HEADER,
)
from switchboard_shared.deps import encode_identity_claims
from switchboard_shared.errors import AppError, ErrorCode
from switchboard_shared.middleware import header, send_error
from switchboard_shared.tokens import estimate_tokens

log = structlog.get_logger(__name__)

ANONYMOUS_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
ANONYMOUS_PREFIX = "anon:"
OWN_AREAS = frozenset({"chat", "models"})
CORS_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
CORS_HEADERS = (
    "authorization, content-type, accept, last-event-id, x-api-key, x-end-user-token, "
    "x-anonymous-id, x-request-id, traceparent"
)
CORS_EXPOSE = "x-request-id, retry-after, x-ratelimit-limit, x-ratelimit-remaining"


def cors_headers(origin: str) -> dict[str, str]:
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Expose-Headers": CORS_EXPOSE,
        "Vary": "Origin",
    }


def _raw(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode(), value.encode("latin-1")) for name, value in headers.items()]


def _same_origin(scope: Scope) -> str | None:
    """Browsers send no Origin on a same-origin GET (Fetch spec); they do send Sec-Fetch-Site, which
    scripts cannot set. Such a request comes from a page on the gateway's own origin (the demo page)."""
    if header(scope, b"sec-fetch-site") != "same-origin":
        return None
    host = header(scope, b"host")
    return f"{scope.get('scheme', 'http')}://{host}".lower() if host else None


class ProxyMiddleware:
    """Forwards the proxy routes (``routes.resolve``); passes every other request on to ``app``.

    It sits above the shared body limit and ``SecurityHeadersMiddleware`` and applies both itself on the
    routes it answers (same limits, same headers), so a proxied request costs no send wrapper per layer."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        body_limit_overrides: dict[str, int] | None = None,
        hsts: bool = False,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_limit_overrides = body_limit_overrides or {}
        self.response_headers = security_headers(hsts=hsts, api=True)
        self.error_headers = {name.decode(): value.decode() for name, value in self.response_headers}

    def _body_limit(self, path: str) -> int:
        for prefix, limit in self.body_limit_overrides.items():
            if path.startswith(prefix):
                return limit
        return self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        method: str = scope["method"]
        route = resolve(method, path) if path.startswith(PUBLIC_PREFIX) else None
        if route is None:
            await self.app(scope, receive, send)
            return
        origin = header(scope, b"origin") or _same_origin(scope)
        if method == "OPTIONS" and origin and header(scope, b"access-control-request-method"):
            await preflight(send, origin)
            return
        runtime: Runtime = scope["state"]["runtime"]
        cors: dict[str, str] = {}
        principal: Principal | None = None
        body_limit = self._body_limit(path)
        try:
            declared = header(scope, b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > body_limit:
                raise AppError(ErrorCode.PAYLOAD_TOO_LARGE, f"The body exceeds {body_limit} bytes.")
            if not safe_path(path):
                raise AppError(ErrorCode.BAD_REQUEST, "The path has empty or dot segments.")
            identity: dict[str, str] = {}
            body: bytes | None = None
            if not route.webhook:
                principal = await authenticate(runtime, scope, method, path, origin, route, cors)
                identity = identity_headers(principal)
                if route.message_turn and principal.key is not None:
                    body = normalise_message(await read_body(receive, body_limit))
                    await runtime.limits.spend_message(principal.key)
            result = await forward(
                scope,
                receive,
                send,
                upstream=runtime.upstreams[route.upstream],
                route=route,
                identity=identity,
                internal_token=runtime.settings.internal_token,
                extra_response_headers=[*self.response_headers, *_raw(cors)]
                if cors
                else self.response_headers,
                body=body,
                body_limit=body_limit,
                keep_body=(lambda _: True) if route.message_turn else None,
            )
        except AppError as exc:
            await send_error(
                send, exc.status, exc.code, exc.message, {**self.error_headers, **exc.headers, **cors}
            )
            return
        except ClientGone:
            return
        if route.message_turn and principal is not None and principal.key is not None and result is not None:
            tokens = _turn_tokens(result.content_type, result.body, body)
            await runtime.limits.spend_tokens(principal.key.tenant_id, tokens)


class GatewayMiddleware:
    """Authenticates the gateway's own ``/v1`` endpoints (``OWN_AREAS``: the OpenAI-compatible API, whose
    errors take OpenAI's shape) and answers CORS preflights of every ``/v1`` path the proxy does not own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(PUBLIC_PREFIX):
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        origin = header(scope, b"origin") or _same_origin(scope)
        if method == "OPTIONS" and origin and header(scope, b"access-control-request-method"):
            await preflight(send, origin)
            return
        if area_of(path) not in OWN_AREAS:  # the admin API, or nothing: FastAPI answers
            await self.app(scope, receive, send)
            return
        runtime: Runtime = scope["state"]["runtime"]
        cors: dict[str, str] = {}
        try:
            if not safe_path(path):
                raise AppError(ErrorCode.BAD_REQUEST, "The path has empty or dot segments.")
            principal = await authenticate(runtime, scope, method, path, origin, None, cors)
            scope["state"]["principal"] = principal
            await self.app(scope, receive, _with_headers(send, _raw(cors)) if cors else send)
        except AppError as exc:
            await send_openai_error(send, exc, {**exc.headers, **cors})


async def authenticate(
    runtime: Runtime,
    scope: Scope,
    method: str,
    path: str,
    origin: str | None,
    route: ProxyRoute | None,
    cors: dict[str, str],
) -> Principal:
    """The caller of a proxy route (``route``) or of the gateway's own API (None): key, widget origin
    (filling ``cors``), end-user identity and the request limits."""
    credential = presented_credential(header(scope, b"authorization"), header(scope, b"x-api-key"))
    principal = await runtime.resolver.resolve(credential)
    key = principal.key
    if key is None:
        raise AppError(
            ErrorCode.FORBIDDEN,
            "The operator token is for the admin API; use one of a tenant's API keys.",
        )
    token = header(scope, b"x-end-user-token")
    if key.scope == KeyScope.WIDGET:
        if origin is None:
            raise AppError(
                ErrorCode.FORBIDDEN, "A widget key is usable only from a web page (no Origin header)."
            )
        if not origin_allowed(origin, key.allowed_origins):
            raise AppError(ErrorCode.FORBIDDEN, f"The origin {origin} is not allowed for this key.")
        cors.update(cors_headers(origin))
        if route is None or not widget_allowed(method, path):
            raise AppError(ErrorCode.FORBIDDEN, "A widget key may only use the conversation endpoints.")
        if token:
            _verify(principal, key.identity_secret, token)
        else:
            anonymous = header(scope, b"x-anonymous-id")
            if not anonymous or not ANONYMOUS_ID.match(anonymous):
                raise AppError(
                    ErrorCode.BAD_REQUEST,
                    "Widget calls need X-End-User-Token (signed identity) or X-Anonymous-ID "
                    "(8-64 characters: letters, digits, - and _).",
                )
            principal.end_user_id = ANONYMOUS_PREFIX + anonymous
            client = scope.get("client")
            await runtime.limits.check_anonymous(key, client[0] if client else None)
    elif token:
        _verify(principal, key.identity_secret, token)
    else:
        # Server and admin keys are the tenant's own backend: trusted to say who the end user is.
        asserted = header(scope, b"x-end-user-id")
        if asserted:
            if not valid_subject(asserted):
                raise AppError(
                    ErrorCode.BAD_REQUEST, f"{END_USER_HEADER} must be 1-200 printable characters."
                )
            principal.end_user_id = asserted
            principal.end_user_verified = header(scope, b"x-end-user-verified") == "1"
    await runtime.limits.check_request(key, principal.end_user_id)
    return principal


def _verify(principal: Principal, secret: str, token: str) -> None:
    try:
        identity = verify_identity(secret, token)
    except InvalidIdentity as exc:
        raise AppError(ErrorCode.UNAUTHORIZED, str(exc)) from exc
    principal.end_user_id = identity.user_id
    principal.end_user_verified = True
    principal.end_user_claims = {
        name: value
        for name, value in (("email", identity.email), ("crm_id", identity.crm_id))
        if value is not None
    }


def identity_headers(principal: Principal) -> dict[str, str]:
    assert principal.key is not None
    headers = {TENANT_HEADER: principal.key.tenant_id, KEY_SCOPE_HEADER: principal.key.scope.value}
    if principal.end_user_id:
        headers[END_USER_HEADER] = principal.end_user_id
        if principal.end_user_verified:
            headers[END_USER_VERIFIED_HEADER] = "1"
            if principal.end_user_claims:
                headers[END_USER_CLAIMS_HEADER] = encode_identity_claims(principal.end_user_claims)
    return headers


def _with_headers(send: Send, extra: list[tuple[bytes, bytes]]) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), *extra]
        await send(message)

    return sending


async def preflight(send: Send, origin: str) -> None:
    """Preflights carry no API key, so they cannot be judged per key: they are answered for any origin,
    and the real request is then refused (403, no CORS headers) unless the key allows it."""
    headers = {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": CORS_METHODS,
        "Access-Control-Allow-Headers": CORS_HEADERS,
        "Access-Control-Max-Age": "600",
        "Vary": "Origin",
    }
    await send({"type": "http.response.start", "status": 204, "headers": _raw(headers)})
    await send({"type": "http.response.body", "body": b""})


def normalise_message(body: bytes) -> bytes:
    """A message's text without control characters (NUL and the like: the databases refuse them and
    nothing downstream wants them), so every service gets the same clean text. JSON can carry them only
    escaped (``\\u0000``), which keeps the check for them cheap."""
    if b"\\u00" not in body:
        return body
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body  # chat answers 422 in the one error shape
    text = data.get("text") if isinstance(data, dict) else None
    if not isinstance(text, str) or strip_control_characters(text) == text:
        return body
    return orjson.dumps({**data, "text": strip_control_characters(text)})


def _text_of_post(body: bytes | None) -> str:
    try:
        data: Any = orjson.loads(body or b"{}")
    except orjson.JSONDecodeError:
        return ""
    text = data.get("text") if isinstance(data, dict) else None
    return text if isinstance(text, str) else ""


def _turn_tokens(content_type: str, body: bytes | None, request_body: bytes | None) -> int:
    """What a message turn spends of the tenant's token budget: chat's usage of the turn (``TurnResult.usage``
    in the JSON result or the stream's ``done`` packet). In a stream, text a ``reset`` voided counts too (it
    was generated all the same); a stream cut before its ``done`` counts the message and what was generated,
    by the fleet's one estimate."""
    usage: TurnUsage | None = None
    generated = 0
    if body:
        try:
            if content_type.startswith("text/event-stream"):
                tokens: list[str] = []
                # A packet cut off by the tee's size limit is skipped by the decoder.
                for packet in decode_sse_body(body):
                    if isinstance(packet, TokenPacket):
                        tokens.append(packet.text)
                    elif isinstance(packet, DonePacket):
                        usage = packet.result.usage
                generated = estimate_tokens("".join(tokens))
            else:
                payload = orjson.loads(body)
                usage = TurnUsage.model_validate(payload["usage"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValidationError):
            usage = None
    if usage is None:
        return estimate_tokens(_text_of_post(request_body)) + generated
    return usage.prompt_tokens + max(usage.completion_tokens, generated)


def security_headers(*, hsts: bool, api: bool) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
    ]
    if hsts:
        headers.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
    if api:
        headers.append((b"cache-control", b"no-store"))
    return headers


class SecurityHeadersMiddleware:
    """Adds the security headers every response should carry; API answers are never cached."""

    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self.app = app
        self.base = security_headers(hsts=hsts, api=False)
        self.api = security_headers(hsts=hsts, api=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_api = scope["path"].startswith("/v1/")
        extra = self.api if is_api else self.base

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if is_api and any(name.lower() == b"cache-control" for name, _ in headers):
                    headers.extend(self.base)
                else:
                    headers.extend(extra)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, sending)
