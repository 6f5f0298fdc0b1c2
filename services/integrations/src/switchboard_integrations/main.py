"""Builds the integrations service app: ``create_app(settings)`` with a lifespan that owns every pooled resource."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from switchboard_integrations.channels.endpoints import router as channels_router
from switchboard_integrations.channels.service import run_delivery_retrier
from switchboard_integrations.connectors.endpoints import router as connectors_router
from switchboard_integrations.crm.endpoints import router as crm_router
from switchboard_integrations.handoff.endpoints import router as handoff_router
from switchboard_integrations.runtime import ConfigCache, DownstreamPool, Runtime
from switchboard_integrations.settings import IntegrationsSettings
from switchboard_integrations.tickets.endpoints import router as tickets_router
from switchboard_shared.app import build_app
from switchboard_shared.contracts.chat import ChatClient
from switchboard_shared.platform import open_platform


def create_app(settings: IntegrationsSettings | None = None) -> FastAPI:
    settings = settings or IntegrationsSettings()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        async with open_platform(
            settings,
            migrations_package="switchboard_integrations",
            downstreams=["chat", "analytics"],
            auto_migrate=settings.auto_migrate,
        ) as platform:
            pool = DownstreamPool(settings, platform)
            runtime = Runtime(
                settings,
                platform,
                pool,
                ChatClient(platform.downstream("chat")),
                ConfigCache(ttl=settings.config_cache_ttl),
            )
            retrier = (
                asyncio.create_task(run_delivery_retrier(runtime), name="delivery-retrier")
                if settings.delivery_retry_seconds > 0
                else None
            )
            try:
                yield {"platform": platform, "readiness": platform.readiness, "runtime": runtime}
            finally:
                if retrier is not None:
                    retrier.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await retrier
                await pool.close()

    app = build_app(
        settings,
        title="Switchboard integrations",
        description="CRM, ticketing, messenger channels and the human handoff queue.",
        lifespan=lifespan,
    )
    for router in (crm_router, tickets_router, handoff_router, connectors_router, channels_router):
        app.include_router(router)
    return app
