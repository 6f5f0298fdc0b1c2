"""The body of every service's Alembic ``env.py``: runs on the connection the caller hands in."""

from __future__ import annotations

from alembic import context
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection


def run_migrations(target_metadata: MetaData) -> None:
    connection: Connection | None = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("Run migrations through switchboard_shared.db.migrate or migrate_url.")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
