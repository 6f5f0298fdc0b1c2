"""The hand-written Alembic revision builds exactly the tables the models declare, on SQLite and PostgreSQL."""

import pytest

from switchboard_integrations.models import Base
from switchboard_shared.db import create_engine, migrate
from switchboard_shared.testing.migrations import migrated_schema


@pytest.mark.asyncio
async def test_migration_matches_models(database_url: str) -> None:
    tables, diff = await migrated_schema(database_url, "switchboard_integrations", Base.metadata)
    assert {
        "connector_configs",
        "channel_bindings",
        "tickets",
        "handoffs",
        "webhook_receipts",
        "channel_deliveries",
    } <= set(tables)
    assert diff == []
    # Running again is a no-op (the app migrates at every start).
    engine = create_engine(database_url)
    try:
        await migrate(engine, "switchboard_integrations")
    finally:
        await engine.dispose()
