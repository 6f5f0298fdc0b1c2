"""Tables of conversations: the conversation, its messages, owner/status transitions, profiles, feedback, and
the outbox of resolved conversations whose operator answers still have to reach retrieval."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from switchboard_chat.db import Base

OPENED_BY_API = "api"
OPENED_BY_INBOUND = "inbound"


def new_id() -> str:
    """A time-ordered id (ms timestamp + randomness), so ids sort in creation order."""
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(10)}"


def utcnow() -> datetime:
    return datetime.now(UTC)


class ConversationRow(Base):
    __tablename__ = "chat_conversations"
    __table_args__ = (
        Index("ix_chat_conversations_tenant_updated", "tenant_id", "updated_at"),
        Index("ix_chat_conversations_tenant_user", "tenant_id", "end_user_id"),
        Index("ix_chat_conversations_tenant_external", "tenant_id", "channel", "external_key"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    end_user_id: Mapped[str] = mapped_column(String(200))
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    external_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # "inbound": opened by integrations for a verified messenger webhook; "api": through the public API.
    # Only the former ever receive messenger messages (see repository.find_by_external_key).
    opened_by: Mapped[str] = mapped_column(String(16), default=OPENED_BY_API)
    status: Mapped[str] = mapped_column(String(16), default="open")
    owner: Mapped[str] = mapped_column(String(16), default="bot")
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    unsupported_streak: Mapped[int] = mapped_column(Integer, default=0)
    handoff_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ticket_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MessageRow(Base):
    __tablename__ = "chat_messages"
    __table_args__ = (
        UniqueConstraint("conversation_id", "seq", name="uq_chat_messages_conversation_seq"),
        UniqueConstraint(
            "conversation_id", "client_message_id", name="uq_chat_messages_conversation_client_id"
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    conversation_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("chat_conversations.id", ondelete="CASCADE")
    )
    tenant_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    citations: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    provider: Mapped[str | None] = mapped_column(String(64), nullable=True)
    no_answer: Mapped[bool] = mapped_column(Boolean, default=False)
    retrieval_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    generation_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    total_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    client_message_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    reply_to: Mapped[str | None] = mapped_column(String(32), nullable=True)
    operator_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TransitionRow(Base):
    """One owner or status change: what changed, who did it and why."""

    __tablename__ = "chat_transitions"
    __table_args__ = (Index("ix_chat_transitions_conversation", "conversation_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    conversation_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("chat_conversations.id", ondelete="CASCADE")
    )
    tenant_id: Mapped[str] = mapped_column(String(64))
    field: Mapped[str] = mapped_column(String(16))
    from_value: Mapped[str] = mapped_column(String(16))
    to_value: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class EndUserRow(Base):
    """What the tenant knows about one of its customers (name, email, CRM id), per tenant."""

    __tablename__ = "chat_end_users"
    __table_args__ = (UniqueConstraint("tenant_id", "end_user_id", name="uq_chat_end_users_tenant_user"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(64))
    end_user_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    crm_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    locale: Mapped[str | None] = mapped_column(String(32), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class FeedbackRow(Base):
    __tablename__ = "chat_feedback"
    __table_args__ = (UniqueConstraint("message_id", name="uq_chat_feedback_message"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    conversation_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("chat_conversations.id", ondelete="CASCADE")
    )
    message_id: Mapped[str] = mapped_column(String(32), ForeignKey("chat_messages.id", ondelete="CASCADE"))
    tenant_id: Mapped[str] = mapped_column(String(64))
    rating: Mapped[str] = mapped_column(String(8))
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CsatRow(Base):
    __tablename__ = "chat_csat"
    __table_args__ = (UniqueConstraint("conversation_id", name="uq_chat_csat_conversation"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    conversation_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("chat_conversations.id", ondelete="CASCADE")
    )
    tenant_id: Mapped[str] = mapped_column(String(64))
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SuggestionOutboxRow(Base):
    """A resolved conversation whose operator answers have not reached retrieval as suggestions yet. Written in
    the transaction that resolves the conversation, removed once retrieval has them all: retrieval being down,
    or the process stopping, delays suggestions but never loses them."""

    __tablename__ = "chat_suggestion_outbox"

    conversation_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("chat_conversations.id", ondelete="CASCADE"), primary_key=True
    )
    tenant_id: Mapped[str] = mapped_column(String(64))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(300), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
