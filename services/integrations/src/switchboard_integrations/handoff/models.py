"""The human handoff queue: one row per handoff of a conversation to an operator."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from switchboard_integrations.db import Base, TimestampMixin, new_id


class HandoffRow(TimestampMixin, Base):
    __tablename__ = "handoffs"
    __table_args__ = (Index("ix_handoffs_tenant_status", "tenant_id", "status"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(64))
    conversation_id: Mapped[str] = mapped_column(String(64), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    end_user_id: Mapped[str] = mapped_column(String(200))
    external_key: Mapped[str | None] = mapped_column(String(200), default=None)
    status: Mapped[str] = mapped_column(String(16), default="waiting")
    reason: Mapped[str] = mapped_column(Text, default="")
    operator_id: Mapped[str | None] = mapped_column(String(200), default=None)
    ticket_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("tickets.id", ondelete="SET NULL"), default=None
    )
    transcript: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    profile: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    answered_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), default=None, doc="First operator reply: the customer's wait ends here"
    )
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
