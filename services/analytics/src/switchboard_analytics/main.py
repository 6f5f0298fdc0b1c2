"""Builds the analytics service app: ``create_app(settings)`` with a lifespan that owns every pooled resource."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from switchboard_analytics.events.endpoints import router as events_router
from switchboard_analytics.exports.endpoints import router as export_router
from switchboard_analytics.posthog_export.service import PostHogExporter
from switchboard_analytics.reports.endpoints import router as reports_router
from switchboard_analytics.runtime import Runtime
from switchboard_analytics.settings import AnalyticsSettings
from switchboard_shared.app import build_app
from switchboard_shared.platform import open_platform

INGEST_PATH = "/internal/v1/events"


def create_app(settings: AnalyticsSettings | None = None) -> FastAPI:
    settings = settings or AnalyticsSettings()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        async with open_platform(
            settings,
            migrations_package="switchboard_analytics",
            downstreams=[],
            auto_migrate=settings.auto_migrate,
        ) as platform:
            exporter = None
            if settings.posthog_api_key and platform.sessionmaker is not None:
                exporter = PostHogExporter(settings, platform.sessionmaker)
                exporter.start()
            try:
                runtime = Runtime(settings=settings, platform=platform, posthog=exporter)
                yield {"platform": platform, "readiness": platform.readiness, "runtime": runtime}
            finally:
                if exporter is not None:
                    await exporter.close()

    app = build_app(
        settings,
        title="Switchboard analytics",
        description="Support events, metrics and PostHog export.",
        lifespan=lifespan,
        body_limit_overrides={INGEST_PATH: settings.ingest_max_body_bytes},
    )
    app.include_router(events_router)
    app.include_router(reports_router)
    app.include_router(export_router)
    return app
