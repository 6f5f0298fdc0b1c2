"""The gateway's one middleware stack: built by Starlette from ``build_app``'s declared order, a proxy route
answered by ``ProxyMiddleware`` with every edge check (request id, access log, metrics, body limits,
security headers) and no layer below it; everything else through the shared layers to FastAPI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

import switchboard_shared.middleware as shared_middleware
from switchboard_gateway.main import create_app
from switchboard_gateway.proxy.middleware import (
    GatewayMiddleware,
    ProxyMiddleware,
    SecurityHeadersMiddleware,
)
from switchboard_shared.middleware import (
    BodySizeLimitMiddleware,
    InternalAuthMiddleware,
    RequestContextMiddleware,
)

from .conftest import (
    OPERATOR,
    SHOP_ORIGIN,
    Env,
    FakeUpstream,
    create_key,
    create_tenant,
    make_settings,
    running,
)

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


def assert_api_security_headers(headers: Any) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert headers[name] == value
    assert headers["cache-control"] == "no-store"


@pytest.mark.asyncio
async def test_one_stack_built_by_starlette_in_the_declared_order(env: Env) -> None:
    assert [middleware.cls for middleware in env.app.user_middleware] == [
        RequestContextMiddleware,
        ProxyMiddleware,
        SecurityHeadersMiddleware,
        BodySizeLimitMiddleware,
        InternalAuthMiddleware,
        GatewayMiddleware,
    ]
    assert "build_middleware_stack" not in vars(env.app)  # Starlette's own method builds it


@pytest.mark.asyncio
async def test_a_proxied_request_runs_no_layer_below_the_proxy(
    upstream: FakeUpstream, tmp_path: Path, sqlite_url: str
) -> None:
    seen: list[str] = []

    class Spy:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                seen.append(scope["path"])
            await self.app(scope, receive, send)

    app = create_app(make_settings(sqlite_url, upstream.url, tmp_path))
    below_proxy = [middleware.cls for middleware in app.user_middleware].index(ProxyMiddleware) + 1
    app.user_middleware.insert(below_proxy, Middleware(Spy))
    async with running(app) as client:
        await create_tenant(client, "acme")
        key = await create_key(client, "acme", "server")
        seen.clear()
        proxied = await client.get("/v1/kbs/kb1", headers={"Authorization": f"Bearer {key}"})
        assert proxied.status_code == 200 and proxied.json()["path"] == "/internal/v1/kbs/kb1"
        refused = await client.get("/v1/kbs/kb1")
        assert refused.status_code == 401
        assert seen == []
        own = await client.get("/v1/admin/tenants/acme", headers=OPERATOR)
        assert own.status_code == 200
        assert seen == ["/v1/admin/tenants/acme"]


class AccessLog:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def info(self, event: str, **fields: Any) -> None:
        self.events.append({"event": event, **fields})

    def error(self, event: str, **fields: Any) -> None:
        self.events.append({"event": event, **fields})


def requests_counted(status: str) -> float:
    labels = {"service": "gateway", "method": "GET", "route": "unmatched", "status": status}
    return REGISTRY.get_sample_value("switchboard_http_requests_total", labels) or 0.0


@pytest.mark.asyncio
async def test_a_proxied_request_keeps_every_edge_check(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    access_log = AccessLog()
    monkeypatch.setattr(shared_middleware, "access_log", access_log)
    counted = requests_counted("200")
    response = await env.client.get("/v1/kbs/kb1", headers={**env.server(), "X-Request-ID": "edge-1"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "edge-1"
    assert_api_security_headers(response.headers)
    (logged,) = access_log.events
    assert isinstance(logged.pop("duration_ms"), float)
    assert logged == {"event": "request", "method": "GET", "path": "/v1/kbs/kb1", "status": 200}
    assert requests_counted("200") == counted + 1

    declared = await env.client.post(
        "/v1/conversations/c1/messages",
        content=b"x" * 70_000,
        headers={**env.server(), "X-Request-ID": "edge-2", "Content-Type": "application/json"},
    )
    assert declared.status_code == 413
    assert declared.json()["error"]["request_id"] == "edge-2"
    assert_api_security_headers(declared.headers)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(10):
            yield b"x" * 10_000

    streamed = await env.client.post("/v1/conversations/c1/feedback", content=chunks(), headers=env.server())
    assert streamed.status_code == 413
    assert streamed.json()["error"]["code"] == "payload_too_large"
    assert_api_security_headers(streamed.headers)
    assert [received.path for received in env.upstream.received] == ["/internal/v1/kbs/kb1"]


@pytest.mark.asyncio
async def test_a_widget_call_from_an_allowed_origin_gets_cors_and_security_headers(env: Env) -> None:
    response = await env.client.get("/v1/conversations", headers=env.widget())
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == SHOP_ORIGIN
    assert_api_security_headers(response.headers)


@pytest.mark.asyncio
async def test_other_requests_run_the_shared_layers(env: Env) -> None:
    admin = await env.client.get("/v1/admin/tenants/acme", headers={**OPERATOR, "X-Request-ID": "own-1"})
    assert admin.status_code == 200 and admin.headers["x-request-id"] == "own-1"
    assert_api_security_headers(admin.headers)

    too_large = await env.client.post("/v1/admin/tenants", content=b"x" * 1_100_000, headers=OPERATOR)
    assert too_large.status_code == 413
    assert too_large.json()["error"]["code"] == "payload_too_large"
    assert_api_security_headers(too_large.headers)

    internal = await env.client.get("/internal/v1/anything", headers={"X-Request-ID": "int-1"})
    assert internal.status_code == 401 and internal.headers["x-request-id"] == "int-1"

    health = await env.client.get("/healthz")
    assert health.status_code == 200
    assert health.headers["x-frame-options"] == "DENY" and "cache-control" not in health.headers

    completions = await env.client.post("/v1/chat/completions", json={})
    assert completions.status_code == 401
    assert completions.json()["error"]["type"]  # OpenAI's error shape, from GatewayMiddleware
    assert_api_security_headers(completions.headers)

    preflight = await env.client.options(
        "/v1/chat/completions", headers={"Origin": SHOP_ORIGIN, "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == SHOP_ORIGIN
