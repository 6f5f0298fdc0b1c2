"""Keyset-paginated reads of events and conversations for CSV export."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard_analytics.events.models import ConversationFactRow, StoredEventRow


async def events_page(
    session: AsyncSession,
    *,
    tenant_id: str,
    start: datetime,
    end: datetime,
    after: tuple[datetime, int] | None,
    limit: int,
) -> Sequence[StoredEventRow]:
    query = select(StoredEventRow).where(
        StoredEventRow.tenant_id == tenant_id,
        StoredEventRow.occurred_at >= start,
        StoredEventRow.occurred_at < end,
    )
    if after is not None:
        query = query.where(tuple_(StoredEventRow.occurred_at, StoredEventRow.seq) > tuple_(*after))
    query = query.order_by(StoredEventRow.occurred_at, StoredEventRow.seq).limit(limit)
    return (await session.execute(query)).scalars().all()


async def conversations_page(
    session: AsyncSession,
    *,
    tenant_id: str,
    start: datetime,
    end: datetime,
    after: tuple[datetime, str] | None,
    limit: int,
) -> Sequence[ConversationFactRow]:
    c = ConversationFactRow
    query = select(c).where(c.tenant_id == tenant_id, c.started_at >= start, c.started_at < end)
    if after is not None:
        query = query.where(tuple_(c.started_at, c.conversation_id) > tuple_(*after))
    query = query.order_by(c.started_at, c.conversation_id).limit(limit)
    return (await session.execute(query)).scalars().all()
