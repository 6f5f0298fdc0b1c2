"""Webhook receipts (the durable half of duplicate detection) and outbound channel deliveries."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from switchboard_integrations.db import Base, TimestampMixin, new_id, utcnow


class WebhookReceipt(Base):
    """One processed webhook event; the unique key stops double processing even when Redis lost it."""

    __tablename__ = "webhook_receipts"
    __table_args__ = (UniqueConstraint("source", "event_key", name="uq_webhook_receipts_source_event_key"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    source: Mapped[str] = mapped_column(String(100), doc="telegram:<bot id>, whatsapp:<phone id>, …")
    event_key: Mapped[str] = mapped_column(String(200), doc="update id, message id, event id")
    tenant_id: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ChannelDelivery(TimestampMixin, Base):
    """One text sent (or being sent) to a customer on a messenger; idempotent per tenant and key."""

    __tablename__ = "channel_deliveries"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key", name="uq_channel_deliveries_tenant_idempotency_key"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    external_key: Mapped[str] = mapped_column(String(200))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="pending", doc="pending, sent, failed")
    provider_message_id: Mapped[str | None] = mapped_column(String(200), index=True, default=None)
    provider_message_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    provider_status: Mapped[str | None] = mapped_column(String(32), default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
