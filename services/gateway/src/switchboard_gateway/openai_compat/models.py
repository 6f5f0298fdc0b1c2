"""Which chat conversation an OpenAI ``user`` (or metadata key) continues, per tenant."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from switchboard_gateway.db import Base


class CompletionThreadRow(Base):
    __tablename__ = "gateway_completion_threads"
    __table_args__ = (UniqueConstraint("tenant_id", "thread_key", name="uq_gateway_threads_tenant_key"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    thread_key: Mapped[str] = mapped_column(String(200))
    conversation_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
