"""Bring one service's database to the head revision: ``python -m switchboard_<service> migrate``.

Each service's entry point runs ``migrate_main`` with its own settings class, so the URL comes from
``<SERVICE>_DATABASE_URL`` and the same environment that runs the service runs its migrations. It waits
for the database to accept connections (a fresh PostgreSQL container takes a few seconds) and, on
PostgreSQL, holds an advisory lock while migrating, so several replicas or jobs migrating at once run one
after the other.

``python -m switchboard_shared.migrate <service>`` (the Kubernetes migrations Job, the compose
``migrate-<service>`` containers, pod init containers) hands over to that entry point: this module never
imports a service.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import zlib
from collections.abc import Sequence

from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from switchboard_shared.db import alembic_config, create_engine, is_sqlite
from switchboard_shared.logging import configure_logging, get_logger
from switchboard_shared.registry import BY_NAME, SERVICE_NAMES
from switchboard_shared.settings import ServiceSettings

log = get_logger(__name__)


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


async def run(settings: ServiceSettings, *, wait_seconds: float, revision: str = "head") -> str:
    """Migrate the database of the service these settings belong to; returns the URL's backend name for
    the log line."""
    package = BY_NAME[settings.service_name].migrations_package
    if package is None:
        raise ValueError(f"{settings.service_name} has no database")
    url = settings.effective_database_url()
    engine = create_engine(url, pool_size=1, max_overflow=0)
    try:
        await wait_for_database(engine, timeout=wait_seconds)
        async with engine.connect() as conn:
            await conn.run_sync(_upgrade_locked, package, revision)
    finally:
        await engine.dispose()
    return "sqlite" if is_sqlite(url) else engine.dialect.name


def _options(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--revision", default="head")
    parser.add_argument(
        "--wait", type=float, default=120.0, help="seconds to wait for the database to accept connections"
    )
    return parser


def migrate_main(settings_class: type[ServiceSettings], argv: Sequence[str] | None = None) -> None:
    """``python -m switchboard_<service> migrate [--revision R] [--wait S]``."""
    service = settings_class.service_name
    parser = _options(
        argparse.ArgumentParser(
            prog=f"python -m switchboard_{service} migrate",
            description=f"Run the {service} service's Alembic migrations against {service.upper()}_DATABASE_URL.",
        )
    )
    args = parser.parse_args(argv)
    configure_logging(service=f"migrate-{service}", level="INFO", json=True)
    try:
        backend = asyncio.run(run(settings_class(), wait_seconds=args.wait, revision=args.revision))
    except TimeoutError as exc:
        raise SystemExit(f"migrate {service}: {exc}") from None
    log.info("migrate.done", service=service, backend=backend, revision=args.revision)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m switchboard_shared.migrate <service>``: runs ``python -m switchboard_<service> migrate``."""
    parser = _options(
        argparse.ArgumentParser(
            prog="python -m switchboard_shared.migrate",
            description="Run a service's Alembic migrations against <SERVICE>_DATABASE_URL.",
        )
    )
    parser.add_argument("service", choices=[name for name in SERVICE_NAMES if BY_NAME[name].has_migrations])
    args = parser.parse_args(argv)
    command_line = [sys.executable, "-m", BY_NAME[args.service].module, "migrate"]
    command_line += ["--revision", args.revision, "--wait", str(args.wait)]
    sys.stdout.flush()
    os.execv(sys.executable, command_line)


if __name__ == "__main__":
    main()
