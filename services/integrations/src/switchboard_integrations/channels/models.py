"""Webhook receipts (the durable half of duplicate detection) and outbound channel deliveries."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from switchboard_integrations.db import Base, TimestampMixin, new_id, utcnow


class WebhookReceiptRow(Base):
    """One processed webhook event; the unique key stops double processing even when Redis lost it."""

    __tablename__ = "webhook_receipts"
    __table_args__ = (UniqueConstraint("source", "event_key", name="uq_webhook_receipts_source_event_key"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    source: Mapped[str] = mapped_column(String(100), doc="telegram:<bot id>, whatsapp:<phone id>, …")
    event_key: Mapped[str] = mapped_column(String(200), doc="update id, message id, event id")
    tenant_id: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ChannelDeliveryRow(TimestampMixin, Base):
    """One text sent (or being sent) to a customer on a messenger; idempotent per tenant and key.

    ``pending`` with ``next_attempt_at`` set is picked up by the background retrier at that time; ``failed``
    waits for someone to ask again under the same key; ``stored`` is a web reply with nothing to send."""

    __tablename__ = "channel_deliveries"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key", name="uq_channel_deliveries_tenant_idempotency_key"),
        Index("ix_channel_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
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
    payload: Mapped[dict[str, Any] | None] = mapped_column(
        JSON, default=None, doc="What to send: OutboundText.to_json()"
    )
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    handoff_id: Mapped[str | None] = mapped_column(String(32), index=True, default=None)
    operator_id: Mapped[str | None] = mapped_column(String(200), default=None)
