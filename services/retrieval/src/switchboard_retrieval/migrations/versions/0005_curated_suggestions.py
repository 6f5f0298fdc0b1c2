"""Suggested curated answers: questions the bot could not answer with the operator's reply, grouped.

Revision ID: 0005_curated_suggestions
Revises: 0004_curated
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_curated_suggestions"
down_revision: str | None = "0004_curated"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "curated_suggestions",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("group_id", sa.String(32), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("question_key", sa.String(64), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("conversation_id", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("curated_answer_id", sa.String(32), nullable=True),
        sa.Column("embedding_model", sa.String(64), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_curated_suggestions"),
        sa.UniqueConstraint(
            "tenant_id",
            "conversation_id",
            "question_key",
            name="uq_curated_suggestions_conversation_question",
        ),
    )
    op.create_index("ix_curated_suggestions_group_id", "curated_suggestions", ["group_id"])
    op.create_index("ix_curated_suggestions_tenant_status", "curated_suggestions", ["tenant_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_curated_suggestions_tenant_status", table_name="curated_suggestions")
    op.drop_index("ix_curated_suggestions_group_id", table_name="curated_suggestions")
    op.drop_table("curated_suggestions")
