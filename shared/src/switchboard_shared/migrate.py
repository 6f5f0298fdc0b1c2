"""``python -m switchboard_shared.migrate <service>``: bring one service's database to the head revision.

Used by the Kubernetes migrations Job, the compose ``migrate-<service>`` containers and pod init
containers. The URL comes from the service's own settings class (``<SERVICE>_DATABASE_URL``), so the
same environment that runs the service runs its migrations. It waits for the database to accept
connections (a fresh PostgreSQL container takes a few seconds) and, on PostgreSQL, holds an advisory
lock while migrating, so several replicas or jobs migrating at once run one after the other.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import time
import zlib
from collections.abc import Sequence

from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from switchboard_shared.db import alembic_config, create_engine, is_sqlite
from switchboard_shared.logging import configure_logging, get_logger
from switchboard_shared.settings import ServiceSettings

SERVICES: dict[str, str] = {
    "gateway": "GatewaySettings",
    "chat": "ChatSettings",
    "retrieval": "RetrievalSettings",
    "integrations": "IntegrationsSettings",
    "analytics": "AnalyticsSettings",
}

log = get_logger(__name__)


def load_settings(service: str) -> ServiceSettings:
    """The service's settings read from the environment (``<SERVICE>_*`` and ``SWITCHBOARD_*``)."""
    module = importlib.import_module(f"switchboard_{service}.settings")
    settings_class: type[ServiceSettings] = getattr(module, SERVICES[service])
    return settings_class()


def advisory_lock_key(package: str) -> int:
    """A stable signed 32-bit key per migrations package for ``pg_advisory_lock``."""
    return zlib.crc32(f"switchboard-migrate:{package}".encode()) - 2**31


async def wait_for_database(engine: AsyncEngine, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.5
    while True:
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return
        except Exception as exc:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"database not reachable after {timeout:.0f} s: {exc}") from exc
            log.info("migrate.waiting_for_database", error=str(exc), retry_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


def _upgrade_locked(connection: Connection, package: str, revision: str) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": advisory_lock_key(package)})
        connection.commit()
    try:
        config = alembic_config(package)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        connection.commit()
    finally:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": advisory_lock_key(package)})
            connection.commit()


async def run(service: str, *, wait_seconds: float, revision: str = "head") -> str:
    """Migrate ``service``'s database; returns the URL's backend name for the log line."""
    settings = load_settings(service)
    url = settings.effective_database_url()
    package = f"switchboard_{service}"
    engine = create_engine(url, pool_size=1, max_overflow=0)
    try:
        await wait_for_database(engine, timeout=wait_seconds)
        async with engine.connect() as conn:
            await conn.run_sync(_upgrade_locked, package, revision)
    finally:
        await engine.dispose()
    return "sqlite" if is_sqlite(url) else engine.dialect.name


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m switchboard_shared.migrate",
        description="Run a service's Alembic migrations against <SERVICE>_DATABASE_URL.",
    )
    parser.add_argument("service", choices=sorted(SERVICES))
    parser.add_argument("--revision", default="head")
    parser.add_argument(
        "--wait", type=float, default=120.0, help="seconds to wait for the database to accept connections"
    )
    args = parser.parse_args(argv)
    configure_logging(service=f"migrate-{args.service}", level="INFO", json=True)
    try:
        backend = asyncio.run(run(args.service, wait_seconds=args.wait, revision=args.revision))
    except TimeoutError as exc:
        raise SystemExit(f"migrate {args.service}: {exc}") from None
    log.info("migrate.done", service=args.service, backend=backend, revision=args.revision)


if __name__ == "__main__":
    main()
