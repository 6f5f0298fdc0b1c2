"""Tables of stored events and the aggregates maintained incrementally as they arrive."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from switchboard_analytics.columns import UTCDateTime
from switchboard_analytics.db import Base

SeqType = BigInteger().with_variant(Integer, "sqlite")


class StoredEventRow(Base):
    """One ingested event, unique by its id (re-sending a batch is harmless)."""

    __tablename__ = "analytics_events"

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(40))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    source: Mapped[str] = mapped_column(String(32))
    conversation_id: Mapped[str | None] = mapped_column(String(128))
    end_user_id: Mapped[str | None] = mapped_column(String(255))
    channel: Mapped[str | None] = mapped_column(String(32))
    properties: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (
        Index("ix_analytics_events_tenant_occurred", "tenant_id", "occurred_at"),
        Index("ix_analytics_events_tenant_conversation", "tenant_id", "conversation_id"),
    )


class RollupRow(Base):
    """Counts and sums per tenant, bucket, metric and key.

    Three grains are kept: ``h`` (UTC hour), ``d`` (UTC day) and ``m`` (UTC month). A report reads whole
    UTC months from ``m``, whole days from ``d`` and the hours at the edges of a local-time range from
    ``h``, so the rows read grow with the keys' cardinality, not with the number of events.
    """

    __tablename__ = "analytics_rollups"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    grain: Mapped[str] = mapped_column(String(1), primary_key=True)
    metric: Mapped[str] = mapped_column(String(32), primary_key=True)
    bucket: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    total: Mapped[float] = mapped_column(Float, default=0.0)


class ConversationFactRow(Base):
    """What analytics knows about one conversation, merged from its events (resolution, escalation)."""

    __tablename__ = "analytics_conversations"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    end_user_id: Mapped[str | None] = mapped_column(String(255))
    channel: Mapped[str | None] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime())
    customer_messages: Mapped[int] = mapped_column(Integer, default=0)
    answers: Mapped[int] = mapped_column(Integer, default=0)
    no_answers: Mapped[int] = mapped_column(Integer, default=0)
    last_answer_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_answer_no_answer: Mapped[bool] = mapped_column(Boolean, default=False)
    operator_replies: Mapped[int] = mapped_column(Integer, default=0)
    handoffs: Mapped[int] = mapped_column(Integer, default=0)
    handoff_reason: Mapped[str | None] = mapped_column(String(64))
    positive_feedback: Mapped[int] = mapped_column(Integer, default=0)
    negative_feedback: Mapped[int] = mapped_column(Integer, default=0)
    csat_score: Mapped[int | None] = mapped_column(Integer)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    next_contact_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    recontact_gap_seconds: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (
        Index("ix_analytics_conversations_tenant_started", "tenant_id", "started_at"),
        Index("ix_analytics_conversations_tenant_user_started", "tenant_id", "end_user_id", "started_at"),
        Index("ix_analytics_conversations_tenant_last_activity", "tenant_id", "last_activity_at"),
    )
