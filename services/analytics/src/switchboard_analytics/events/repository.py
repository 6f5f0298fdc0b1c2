"""All SQL of event ingestion: idempotent inserts, rollup upserts, conversation facts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Insert, Table, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard_analytics.events.models import ConversationFactRow, RollupRow, StoredEventRow

CHUNK = 400
# Statements are executed with a list of parameter sets (executemany / insertmanyvalues): compiled once
# and cached, where a multi-row VALUES clause would be compiled again for every batch.
EVENTS = cast(Table, StoredEventRow.__table__)
ROLLUPS = cast(Table, RollupRow.__table__)
CONVERSATIONS = cast(Table, ConversationFactRow.__table__)
RollupKey = tuple[str, str, str, datetime, str]


def _insert(session: AsyncSession, table: Any) -> Any:
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


def is_postgres(session: AsyncSession) -> bool:
    return session.bind is not None and session.bind.dialect.name == "postgresql"


async def insert_events(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Insert events, skipping ids already stored; return the ids that were new."""
    if not rows:
        return set()
    stmt: Insert = (
        _insert(session, EVENTS)
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(EVENTS.c.event_id)
    )
    result = await session.execute(stmt, list(rows))
    return set(result.scalars().all())


async def upsert_rollups(session: AsyncSession, increments: dict[RollupKey, tuple[int, float]]) -> None:
    # Sorted so concurrent batches take row locks in the same order (no deadlocks on PostgreSQL).
    rows = [
        {
            "tenant_id": key[0],
            "grain": key[1],
            "metric": key[2],
            "bucket": key[3],
            "key": key[4],
            "count": count,
            "total": total,
        }
        for key, (count, total) in sorted(increments.items())
    ]
    if not rows:
        return
    stmt = _insert(session, ROLLUPS)
    stmt = stmt.on_conflict_do_update(
        index_elements=["tenant_id", "grain", "metric", "bucket", "key"],
        set_={"count": ROLLUPS.c.count + stmt.excluded.count, "total": ROLLUPS.c.total + stmt.excluded.total},
    )
    await session.execute(stmt, rows)


async def lock_conversations(
    session: AsyncSession, skeletons: list[dict[str, Any]]
) -> tuple[dict[tuple[str, str], ConversationFactRow], set[tuple[str, str]]]:
    """Create missing conversation rows, then load (and on PostgreSQL lock) every touched one."""
    skeletons = sorted(skeletons, key=lambda row: (row["tenant_id"], row["conversation_id"]))
    stmt = (
        _insert(session, CONVERSATIONS)
        .on_conflict_do_nothing(index_elements=["tenant_id", "conversation_id"])
        .returning(CONVERSATIONS.c.tenant_id, CONVERSATIONS.c.conversation_id)
    )
    created = {(row[0], row[1]) for row in (await session.execute(stmt, skeletons)).all()}
    keys = [(row["tenant_id"], row["conversation_id"]) for row in skeletons]
    facts: dict[tuple[str, str], ConversationFactRow] = {}
    for start in range(0, len(keys), CHUNK):
        query = (
            select(ConversationFactRow)
            .where(
                tuple_(ConversationFactRow.tenant_id, ConversationFactRow.conversation_id).in_(
                    keys[start : start + CHUNK]
                )
            )
            .order_by(ConversationFactRow.tenant_id, ConversationFactRow.conversation_id)
            .execution_options(populate_existing=True)
        )
        if is_postgres(session):
            query = query.with_for_update()
        for fact in (await session.execute(query)).scalars():
            facts[(fact.tenant_id, fact.conversation_id)] = fact
    return facts, created


async def user_conversations(
    session: AsyncSession, *, users: list[tuple[str, str]], start: datetime, end: datetime
) -> list[ConversationFactRow]:
    """The conversations of these end users started in [start, end] (locked on PostgreSQL).

    Rows already in the session keep their in-memory (fresher) state.
    """
    c = ConversationFactRow
    facts: list[ConversationFactRow] = []
    for offset in range(0, len(users), CHUNK):
        query = (
            select(c)
            .where(
                tuple_(c.tenant_id, c.end_user_id).in_(users[offset : offset + CHUNK]),
                c.started_at >= start,
                c.started_at <= end,
            )
            .order_by(c.tenant_id, c.conversation_id)
        )
        if is_postgres(session):
            query = query.with_for_update()
        facts.extend((await session.execute(query)).scalars().all())
    return facts
