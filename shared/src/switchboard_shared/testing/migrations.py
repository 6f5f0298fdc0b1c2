"""Checks that a service's hand-written Alembic revisions build exactly the tables its models declare."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, inspect
from sqlalchemy.engine import Connection

from switchboard_shared.db import create_engine, migrate


async def migrated_schema(
    database_url: str, package: str, metadata: MetaData
) -> tuple[dict[str, set[str]], list[Any]]:
    """Run the package's migrations on an empty database; return its columns by table and the
    differences Alembic's autogenerate finds against ``metadata`` (empty when they match)."""

    def read(connection: Connection) -> tuple[dict[str, set[str]], list[Any]]:
        inspector = inspect(connection)
        tables = {
            table: {column["name"] for column in inspector.get_columns(table)}
            for table in inspector.get_table_names()
        }
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return tables, list(compare_metadata(context, metadata))

    engine = create_engine(database_url)
    try:
        await migrate(engine, package)
        async with engine.connect() as conn:
            return await conn.run_sync(read)
    finally:
        await engine.dispose()
