"""All SQL of tickets."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard_integrations.tickets.models import TicketRow


async def by_idempotency_key(session: AsyncSession, *, tenant_id: str, key: str) -> TicketRow | None:
    result = await session.scalars(
        select(TicketRow).where(TicketRow.tenant_id == tenant_id, TicketRow.idempotency_key == key)
    )
    return result.first()


async def by_external_id(session: AsyncSession, *, connector_id: str, external_id: str) -> TicketRow | None:
    result = await session.scalars(
        select(TicketRow).where(TicketRow.connector_id == connector_id, TicketRow.external_id == external_id)
    )
    return result.first()


async def list_tickets(
    session: AsyncSession, *, tenant_id: str, conversation_id: str | None, limit: int, offset: int
) -> tuple[Sequence[TicketRow], int]:
    query = select(TicketRow).where(TicketRow.tenant_id == tenant_id, TicketRow.external_id.is_not(None))
    if conversation_id is not None:
        query = query.where(TicketRow.conversation_id == conversation_id)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(query.order_by(TicketRow.created_at.desc()).limit(limit).offset(offset))
    return rows.all(), int(total or 0)
