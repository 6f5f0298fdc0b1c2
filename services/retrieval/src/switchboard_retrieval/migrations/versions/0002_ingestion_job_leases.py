"""Leases of running ingestion jobs: which worker holds a job until when, and the job's queue round.

Revision ID: 0002_ingestion_job_leases
Revises: 0001_knowledge_bases
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_ingestion_job_leases"
down_revision: str | None = "0001_knowledge_bases"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("ingestion_jobs", sa.Column("lease_owner", sa.String(120), nullable=True))
    op.add_column("ingestion_jobs", sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "ingestion_jobs",
        sa.Column("queue_generation", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_index("ix_ingestion_jobs_status", "ingestion_jobs", ["status"])


def downgrade() -> None:
    op.drop_index("ix_ingestion_jobs_status", table_name="ingestion_jobs")
    with op.batch_alter_table("ingestion_jobs") as batch:
        batch.drop_column("queue_generation")
        batch.drop_column("lease_expires_at")
        batch.drop_column("lease_owner")
