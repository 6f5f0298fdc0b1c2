"""Curated answers: a tenant's question -> answer pairs with the vectors of their wordings, hit counts, and
the tenant's matching settings (threshold, change version).

Revision ID: 0004_curated
Revises: 0003_document_sync_public_urls
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_curated"
down_revision: str | None = "0003_document_sync_public_urls"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "curated_answers",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("kb_id", sa.String(32), nullable=True),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("variants", sa.JSON(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("group_key", sa.String(100), nullable=True),
        sa.Column("embedding_model", sa.String(64), nullable=False),
        sa.Column("vectors", sa.LargeBinary(), nullable=False),
        sa.Column("dimensions", sa.Integer(), nullable=False),
        sa.Column("expires_at", TS, nullable=True),
        sa.Column("hit_count", sa.Integer(), nullable=False),
        sa.Column("last_hit_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_curated_answers"),
        sa.ForeignKeyConstraint(
            ["kb_id"],
            ["knowledge_bases.id"],
            name="fk_curated_answers_kb_id_knowledge_bases",
            ondelete="SET NULL",
        ),
    )
    op.create_index("ix_curated_answers_tenant_id", "curated_answers", ["tenant_id"])
    op.create_index("ix_curated_answers_kb_id", "curated_answers", ["kb_id"])
    op.create_table(
        "curated_settings",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("entry_count", sa.Integer(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_curated_settings"),
    )


def downgrade() -> None:
    op.drop_table("curated_settings")
    op.drop_index("ix_curated_answers_kb_id", table_name="curated_answers")
    op.drop_index("ix_curated_answers_tenant_id", table_name="curated_answers")
    op.drop_table("curated_answers")
