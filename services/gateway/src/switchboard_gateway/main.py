"""Builds the gateway service app: ``create_app(settings)`` with a lifespan that owns every pooled resource.

One middleware stack (``build_app``'s), outermost first: request context (request id, trace, access log,
metrics) → ``ProxyMiddleware`` (a proxy route ends here: key, origin, identity, limits, body limit and
security headers, then forwarded to its upstream) → security headers → body limits → internal auth →
``GatewayMiddleware`` (the caller of the gateway's own ``/v1`` API) → FastAPI for the gateway's own
endpoints (admin API, OpenAI-compatible API, docs, static assets).
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.middleware import Middleware
from starlette.routing import Route

from switchboard_gateway.auth.principal import KeyResolver
from switchboard_gateway.demo import mount_demo_sign_in
from switchboard_gateway.keys.endpoints import router as keys_router
from switchboard_gateway.limits.service import Limits
from switchboard_gateway.openai_compat.endpoints import router as openai_router
from switchboard_gateway.openapi import OpenAPIAggregator
from switchboard_gateway.proxy.middleware import (
    GatewayMiddleware,
    ProxyMiddleware,
    SecurityHeadersMiddleware,
)
from switchboard_gateway.proxy.upstreams import Upstreams
from switchboard_gateway.runtime import Runtime, RuntimeDep
from switchboard_gateway.settings import GatewaySettings
from switchboard_gateway.static import FAVICON_URL, mount_static
from switchboard_gateway.tenants.endpoints import router as tenants_router
from switchboard_shared.app import build_app
from switchboard_shared.platform import open_platform
from switchboard_shared.responses import JSONResponse


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        async with open_platform(
            settings,
            migrations_package="switchboard_gateway",
            downstreams=["chat"],
            auto_migrate=settings.auto_migrate,
        ) as platform:
            assert platform.sessionmaker is not None
            # In aiohttp mode this opens the proxy's sessions: closed below, whatever fails after.
            upstreams = Upstreams(settings)
            try:
                for name, upstream in upstreams.by_name.items():
                    platform.readiness.add_breaker(f"proxy:{name}", upstream)
                runtime = Runtime(
                    settings=settings,
                    platform=platform,
                    resolver=KeyResolver(
                        platform.sessionmaker,
                        admin_token=settings.admin_token,
                        ttl_seconds=settings.key_cache_seconds,
                        negative_ttl_seconds=settings.key_negative_cache_seconds,
                    ),
                    limits=Limits(settings, platform.stores),
                    upstreams=upstreams,
                    openapi=OpenAPIAggregator(upstreams, cache_seconds=settings.openapi_cache_seconds),
                )
                yield {"platform": platform, "readiness": platform.readiness, "runtime": runtime}
            finally:
                await upstreams.close()

    app = build_app(
        settings,
        title="Switchboard",
        description=(
            "The public API of Switchboard, the customer-support assistant: conversations and messages "
            "(JSON or SSE), knowledge bases, handoffs, analytics, channel webhooks, the admin API and an "
            "OpenAI-compatible chat completions endpoint. Authenticate with an API key: "
            "`Authorization: Bearer <key>` or `X-API-Key`."
        ),
        lifespan=lifespan,
        body_limit_overrides=body_limits(settings),
        favicon_url=FAVICON_URL,
        # The gateway's port is the public one: its metrics go only to a scraper with a token.
        metrics_tokens=[token for token in (settings.metrics_token, settings.admin_token) if token],
        outer_middleware=[
            # First, so a proxied request runs none of the layers below and no FastAPI routing: it
            # applies the same body limits and security headers itself.
            Middleware(
                ProxyMiddleware,
                max_body_bytes=settings.max_body_bytes,
                body_limit_overrides=body_limits(settings),
                hsts=settings.hsts,
            ),
            Middleware(SecurityHeadersMiddleware, hsts=settings.hsts),
        ],
        inner_middleware=[Middleware(GatewayMiddleware)],
    )
    app.include_router(tenants_router)
    app.include_router(keys_router)
    app.include_router(openai_router)
    mount_demo_sign_in(app, settings)

    app.router.routes[:] = [
        route
        for route in app.router.routes
        if not (isinstance(route, Route) and route.path == "/openapi.json")
    ]

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi_document(runtime: RuntimeDep) -> JSONResponse:
        return JSONResponse(await runtime.openapi.document(app.openapi()))

    mount_static(app, settings.effective_static_dir())
    return app


def body_limits(settings: GatewaySettings) -> dict[str, int]:
    return {"/v1/conversations": settings.message_body_bytes, "/v1/kbs": settings.upload_body_bytes}
