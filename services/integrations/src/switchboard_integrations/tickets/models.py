"""Tickets opened in Zendesk or Jira on a tenant's behalf."""

from typing import Any

from sqlalchemy import JSON, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from switchboard_integrations.db import Base, TimestampMixin, new_id


class TicketRow(TimestampMixin, Base):
    __tablename__ = "tickets"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key", name="uq_tickets_tenant_idempotency_key"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    system: Mapped[str] = mapped_column(String(16))
    connector_id: Mapped[str] = mapped_column(String(32))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    external_id: Mapped[str | None] = mapped_column(String(100), index=True, default=None)
    url: Mapped[str | None] = mapped_column(String(500), default=None)
    status: Mapped[str] = mapped_column(String(32), default="creating")
    conversation_id: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
    requester_external_id: Mapped[str | None] = mapped_column(String(100), default=None)
    own_comment_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
