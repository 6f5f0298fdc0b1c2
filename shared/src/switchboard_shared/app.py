"""The common part of every service's ``create_app``: error handlers, middleware, health and metrics, and
the API docs (``/docs`` Swagger UI, ``/redoc``) served with their assets from the ``fastapi-offline``
package under ``/docs/assets``: no CDN, so they render on a machine without internet access."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.middleware import Middleware

from switchboard_shared.errors import error_responses, install_error_handlers
from switchboard_shared.health import health_router
from switchboard_shared.middleware import (
    BodySizeLimitMiddleware,
    InternalAuthMiddleware,
    RequestContextMiddleware,
)
from switchboard_shared.settings import ServiceSettings

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[dict[str, Any]]]
DOCS_ASSETS_URL = "/docs/assets"


def build_app(
    settings: ServiceSettings,
    *,
    title: str,
    description: str,
    lifespan: Lifespan,
    version: str = "0.1.0",
    body_limit_overrides: dict[str, int] | None = None,
    favicon_url: str | None = None,
    metrics_tokens: Sequence[str] = (),
    outer_middleware: Sequence[Middleware] = (),
    inner_middleware: Sequence[Middleware] = (),
) -> FastAPI:
    """The app with its one middleware stack, built by Starlette from ``user_middleware``, outermost first
    (between FastAPI's own error, telemetry and body-limit layers and its exception middleware and routing):

    request context (request id, trace, access log, metrics, the 500 that still carries the request id)
    → ``outer_middleware`` → body size limit → internal-route token → ``inner_middleware`` → routes.

    ``outer_middleware`` runs on every request with its request id bound, before the shared checks: a layer
    there that answers some requests itself (the gateway's proxy) applies the checks those requests need,
    and the others pass on down. ``inner_middleware`` runs after the shared checks, next to the endpoints.
    """
    app = FastAPIOffline(
        title=title,
        description=description,
        version=version,
        lifespan=lifespan,
        responses=error_responses(422, 500),
        static_url=DOCS_ASSETS_URL,
        favicon_url=favicon_url,
        middleware=[
            # Request context wraps everything, so even a 413 or 401 carries the request id.
            Middleware(RequestContextMiddleware, service=settings.service_name),
            *outer_middleware,
            Middleware(
                BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes, overrides=body_limit_overrides
            ),
            Middleware(InternalAuthMiddleware, token=settings.internal_token),
            *inner_middleware,
        ],
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.include_router(health_router(metrics_tokens=metrics_tokens))
    return app
