"""All SQL of the handoff queue."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard_integrations.handoff.models import HandoffRecord

OPEN_STATUSES = ("waiting", "claimed")


async def open_for_conversation(
    session: AsyncSession, *, tenant_id: str, conversation_id: str
) -> HandoffRecord | None:
    result = await session.scalars(
        select(HandoffRecord)
        .where(
            HandoffRecord.tenant_id == tenant_id,
            HandoffRecord.conversation_id == conversation_id,
            HandoffRecord.status.in_(OPEN_STATUSES),
        )
        .order_by(HandoffRecord.created_at.desc())
    )
    return result.first()


async def open_for_ticket(session: AsyncSession, *, ticket_id: str) -> HandoffRecord | None:
    result = await session.scalars(
        select(HandoffRecord)
        .where(HandoffRecord.ticket_id == ticket_id)
        .order_by(HandoffRecord.created_at.desc())
    )
    return result.first()


async def list_handoffs(
    session: AsyncSession, *, tenant_id: str, statuses: Sequence[str], limit: int, offset: int
) -> tuple[Sequence[HandoffRecord], int]:
    query = select(HandoffRecord).where(
        HandoffRecord.tenant_id == tenant_id, HandoffRecord.status.in_(statuses)
    )
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(query.order_by(HandoffRecord.created_at).limit(limit).offset(offset))
    return rows.all(), int(total or 0)
