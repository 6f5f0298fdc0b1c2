"""All SQL of webhook receipts and channel deliveries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard_integrations.channels.models import ChannelDeliveryRow, WebhookReceiptRow


async def add_receipt(session: AsyncSession, *, source: str, event_key: str, tenant_id: str) -> None:
    session.add(WebhookReceiptRow(source=source, event_key=event_key, tenant_id=tenant_id))
    await session.flush()


async def remove_receipt(session: AsyncSession, *, source: str, event_key: str) -> None:
    await session.execute(
        delete(WebhookReceiptRow).where(
            WebhookReceiptRow.source == source, WebhookReceiptRow.event_key == event_key
        )
    )


async def delivery_by_key(
    session: AsyncSession, *, tenant_id: str, idempotency_key: str
) -> ChannelDeliveryRow | None:
    result = await session.scalars(
        select(ChannelDeliveryRow).where(
            ChannelDeliveryRow.tenant_id == tenant_id, ChannelDeliveryRow.idempotency_key == idempotency_key
        )
    )
    return result.first()


async def delivery_by_provider_id(
    session: AsyncSession, *, tenant_id: str, channel: str, provider_message_id: str
) -> ChannelDeliveryRow | None:
    result = await session.scalars(
        select(ChannelDeliveryRow).where(
            ChannelDeliveryRow.tenant_id == tenant_id,
            ChannelDeliveryRow.channel == channel,
            ChannelDeliveryRow.provider_message_id == provider_message_id,
        )
    )
    return result.first()


async def due_deliveries(session: AsyncSession, *, now: datetime, limit: int) -> Sequence[ChannelDeliveryRow]:
    """Pending deliveries whose next attempt is due, across tenants (the background retrier's work)."""
    result = await session.scalars(
        select(ChannelDeliveryRow)
        .where(
            ChannelDeliveryRow.status == "pending",
            ChannelDeliveryRow.next_attempt_at.is_not(None),
            ChannelDeliveryRow.next_attempt_at <= now,
        )
        .order_by(ChannelDeliveryRow.next_attempt_at)
        .limit(limit)
    )
    return result.all()


async def deliveries_of_handoff(
    session: AsyncSession, *, tenant_id: str, handoff_id: str
) -> Sequence[ChannelDeliveryRow]:
    result = await session.scalars(
        select(ChannelDeliveryRow)
        .where(ChannelDeliveryRow.tenant_id == tenant_id, ChannelDeliveryRow.handoff_id == handoff_id)
        .order_by(ChannelDeliveryRow.created_at)
    )
    return result.all()
