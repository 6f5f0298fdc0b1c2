"""The table of per-tenant assistant settings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from switchboard_chat.conversations.models import utcnow
from switchboard_chat.db import Base


class AssistantSettingsRow(Base):
    __tablename__ = "chat_assistant_settings"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    instructions: Mapped[str] = mapped_column(Text, default="")
    languages: Mapped[list[str]] = mapped_column(JSON, default=list)
    providers: Mapped[list[str]] = mapped_column(JSON, default=list)
    provider_configs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    escalation: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    greeting: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    tools: Mapped[list[str]] = mapped_column(JSON, default=list)
    kb_ids: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
