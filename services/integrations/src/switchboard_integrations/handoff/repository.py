"""All SQL of the handoff queue."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard_integrations.handoff.models import HandoffRow

OPEN_STATUSES = ("waiting", "claimed")


async def open_for_conversation(
    session: AsyncSession, *, tenant_id: str, conversation_id: str
) -> HandoffRow | None:
    result = await session.scalars(
        select(HandoffRow)
        .where(
            HandoffRow.tenant_id == tenant_id,
            HandoffRow.conversation_id == conversation_id,
            HandoffRow.status.in_(OPEN_STATUSES),
        )
        .order_by(HandoffRow.created_at.desc())
    )
    return result.first()


async def open_for_ticket(session: AsyncSession, *, ticket_id: str) -> HandoffRow | None:
    result = await session.scalars(
        select(HandoffRow).where(HandoffRow.ticket_id == ticket_id).order_by(HandoffRow.created_at.desc())
    )
    return result.first()


async def list_handoffs(
    session: AsyncSession, *, tenant_id: str, statuses: Sequence[str], limit: int, offset: int
) -> tuple[Sequence[HandoffRow], int]:
    query = select(HandoffRow).where(HandoffRow.tenant_id == tenant_id, HandoffRow.status.in_(statuses))
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(query.order_by(HandoffRow.created_at).limit(limit).offset(offset))
    return rows.all(), int(total or 0)
