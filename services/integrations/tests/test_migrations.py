"""The hand-written Alembic revision builds exactly the tables the models declare, on SQLite and PostgreSQL."""

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from switchboard_integrations.models import Base
from switchboard_shared.db import create_engine, migrate


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


@pytest.mark.asyncio
async def test_migration_matches_models(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await migrate(engine, "switchboard_integrations")
        async with engine.connect() as conn:
            tables = await conn.run_sync(_tables)
            diff = await conn.run_sync(_diff)
        assert {
            "connector_configs",
            "channel_bindings",
            "tickets",
            "handoffs",
            "webhook_receipts",
            "channel_deliveries",
        } <= tables
        assert diff == []
        # Running again is a no-op (the app migrates at every start).
        await migrate(engine, "switchboard_integrations")
    finally:
        await engine.dispose()
