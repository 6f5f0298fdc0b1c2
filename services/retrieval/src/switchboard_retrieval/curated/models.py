"""Tables of curated answers: a tenant's question -> answer pairs with the vectors of their wordings, and the
tenant's matching settings (threshold, and a version bumped on every change so each replica knows when its
in-memory copy is stale)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from switchboard_retrieval.db import Base, new_id, utcnow


class CuratedAnswerRow(Base):
    __tablename__ = "curated_answers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    # Deleting the knowledge base unlinks the entry (it keeps answering on its vectors).
    kb_id: Mapped[str | None] = mapped_column(
        ForeignKey("knowledge_bases.id", ondelete="SET NULL"), nullable=True, index=True
    )
    question: Mapped[str] = mapped_column(Text)
    variants: Mapped[list[str]] = mapped_column(JSON, default=list)
    answer: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(8))
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Entries of one group ask one question in several languages.
    group_key: Mapped[str | None] = mapped_column(String(100), nullable=True)
    embedding_model: Mapped[str] = mapped_column(String(64))
    # float32 rows, one per wording (the question, then its variants), normalised.
    vectors: Mapped[bytes] = mapped_column(LargeBinary)
    dimensions: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    hit_count: Mapped[int] = mapped_column(Integer, default=0)
    last_hit_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class CuratedSettingsRow(Base):
    __tablename__ = "curated_settings"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    threshold: Mapped[float | None] = mapped_column(Float, nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    entry_count: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class CuratedSuggestionRow(Base):
    """A customer's question the bot could not answer and the reply an operator gave it, waiting for an
    operator to approve it as a curated answer, grouped with the suggestions that ask the same."""

    __tablename__ = "curated_suggestions"
    __table_args__ = (
        UniqueConstraint(
            "tenant_id",
            "conversation_id",
            "question_key",
            name="uq_curated_suggestions_conversation_question",
        ),
        Index("ix_curated_suggestions_tenant_status", "tenant_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(64))
    # The id of the group's first suggestion (its own id for a first one).
    group_id: Mapped[str] = mapped_column(String(32), index=True)
    question: Mapped[str] = mapped_column(Text)
    question_key: Mapped[str] = mapped_column(String(64))
    answer: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(8))
    conversation_id: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    curated_answer_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    embedding_model: Mapped[str] = mapped_column(String(64))
    # The question's normalised float32 vector.
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
