"""All SQL of webhook receipts and channel deliveries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard_integrations.channels.models import ChannelDelivery, WebhookReceipt


async def add_receipt(session: AsyncSession, *, source: str, event_key: str, tenant_id: str) -> None:
    session.add(WebhookReceipt(source=source, event_key=event_key, tenant_id=tenant_id))
    await session.flush()


async def remove_receipt(session: AsyncSession, *, source: str, event_key: str) -> None:
    await session.execute(
        delete(WebhookReceipt).where(WebhookReceipt.source == source, WebhookReceipt.event_key == event_key)
    )


async def delivery_by_key(
    session: AsyncSession, *, tenant_id: str, idempotency_key: str
) -> ChannelDelivery | None:
    result = await session.scalars(
        select(ChannelDelivery).where(
            ChannelDelivery.tenant_id == tenant_id, ChannelDelivery.idempotency_key == idempotency_key
        )
    )
    return result.first()


async def delivery_by_provider_id(
    session: AsyncSession, *, tenant_id: str, channel: str, provider_message_id: str
) -> ChannelDelivery | None:
    result = await session.scalars(
        select(ChannelDelivery).where(
            ChannelDelivery.tenant_id == tenant_id,
            ChannelDelivery.channel == channel,
            ChannelDelivery.provider_message_id == provider_message_id,
        )
    )
    return result.first()


async def due_deliveries(session: AsyncSession, *, now: datetime, limit: int) -> Sequence[ChannelDelivery]:
    """Pending deliveries whose next attempt is due, across tenants (the background retrier's work)."""
    result = await session.scalars(
        select(ChannelDelivery)
        .where(
            ChannelDelivery.status == "pending",
            ChannelDelivery.next_attempt_at.is_not(None),
            ChannelDelivery.next_attempt_at <= now,
        )
        .order_by(ChannelDelivery.next_attempt_at)
        .limit(limit)
    )
    return result.all()


async def deliveries_of_handoff(
    session: AsyncSession, *, tenant_id: str, handoff_id: str
) -> Sequence[ChannelDelivery]:
    result = await session.scalars(
        select(ChannelDelivery)
        .where(ChannelDelivery.tenant_id == tenant_id, ChannelDelivery.handoff_id == handoff_id)
        .order_by(ChannelDelivery.created_at)
    )
    return result.all()
