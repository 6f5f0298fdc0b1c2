"""The hand-written Alembic revisions build exactly the tables the models declare (including the job leases
of 0002), on SQLite and PostgreSQL."""

import pytest

from switchboard_retrieval.models import Base
from switchboard_shared.testing.migrations import migrated_schema


@pytest.mark.asyncio
async def test_migrations_match_models(database_url: str) -> None:
    tables, diff = await migrated_schema(database_url, "switchboard_retrieval", Base.metadata)
    assert {"lease_owner", "lease_expires_at", "queue_generation"} <= tables["ingestion_jobs"]
    assert diff == []
