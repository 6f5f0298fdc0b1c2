"""What every service's lifespan opens once: DB engine, stores, one client per downstream, readiness."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from switchboard_shared.analytics_client import AnalyticsClient
from switchboard_shared.db import create_engine, create_sessionmaker, migrate, ping
from switchboard_shared.health import Readiness
from switchboard_shared.http_client import Downstream, client_config_from_settings
from switchboard_shared.registry import BY_NAME
from switchboard_shared.settings import ServiceSettings
from switchboard_shared.stores import Stores, create_stores


@dataclass
class Platform:
    settings: ServiceSettings
    engine: AsyncEngine | None
    sessionmaker: async_sessionmaker[AsyncSession] | None
    stores: Stores
    readiness: Readiness
    downstreams: dict[str, Downstream] = field(default_factory=dict)
    analytics: AnalyticsClient = field(default_factory=lambda: AnalyticsClient(None, service="none"))

    def downstream(self, name: str) -> Downstream:
        return self.downstreams[name]


@asynccontextmanager
async def open_platform(
    settings: ServiceSettings,
    *,
    migrations_package: str | None,
    downstreams: Sequence[str] = (),
    auto_migrate: bool = True,
) -> AsyncIterator[Platform]:
    """Open the pooled resources of a service and close them all on the way out."""
    readiness = Readiness()
    engine = None
    sessionmaker = None
    if migrations_package is not None:
        engine = create_engine(settings.effective_database_url())
        if auto_migrate:
            await migrate(engine, migrations_package)
        sessionmaker = create_sessionmaker(engine)
        db_engine = engine

        async def check_db() -> None:
            await ping(db_engine)

        readiness.add_check("database", check_db)
    stores = create_stores(settings.redis_url)
    if stores.backend == "redis":
        readiness.add_check("redis", stores.ping)
    clients: dict[str, Downstream] = {}
    for name in downstreams:
        if name not in BY_NAME:
            raise ValueError(f"unknown downstream {name}")
        client = Downstream(
            name,
            getattr(settings, f"{name}_url"),
            client_config_from_settings(
                settings, default_headers={"X-Internal-Token": settings.internal_token}
            ),
        )
        clients[name] = client
        readiness.add_breaker(name, client)
    analytics = AnalyticsClient(clients.get("analytics"), service=settings.service_name)
    await analytics.start()
    platform = Platform(settings, engine, sessionmaker, stores, readiness, clients, analytics)
    try:
        yield platform
    finally:
        await analytics.close()
        for client in clients.values():
            await client.close()
        await stores.close()
        if engine is not None:
            await engine.dispose()
