"""Document-scoped sync jobs, and no local paths left as citation URLs.

A sync job may cover one document of its source (``document_id``). Files, FAQ and upload sources used to
store the file's path on the retrieval server as the document's and chunks' URL, which reached citations;
only web addresses are public, so every other stored URL is cleared (a source's ``public_base_url`` sets
public ones at its next sync).

Revision ID: 0003_document_sync_public_urls
Revises: 0002_ingestion_job_leases
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_document_sync_public_urls"
down_revision: str | None = "0002_ingestion_job_leases"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("ingestion_jobs", sa.Column("document_id", sa.String(32), nullable=True))
    for table in ("documents", "chunks"):
        op.execute(
            sa.text(
                f"UPDATE {table} SET url = NULL WHERE url IS NOT NULL "
                "AND url NOT LIKE 'http://%' AND url NOT LIKE 'https://%'"
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("ingestion_jobs") as batch:
        batch.drop_column("document_id")
