"""Tenants, API keys and OpenAI-compatible completion threads.

Revision ID: 0001_tenants_and_keys
Revises:
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_tenants_and_keys"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "gateway_tenants",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("identity_secret", sa.String(128), nullable=False),
        sa.Column("daily_message_budget", sa.Integer(), nullable=True),
        sa.Column("daily_token_budget", sa.Integer(), nullable=True),
        sa.Column("end_user_requests_per_minute", sa.Integer(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_gateway_tenants"),
    )
    op.create_table(
        "gateway_api_keys",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("display_prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("allowed_origins", sa.JSON(), nullable=False),
        sa.Column("requests_per_minute", sa.Integer(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=True),
        sa.Column("revoked_at", TZ, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_gateway_api_keys"),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["gateway_tenants.id"],
            name="fk_gateway_api_keys_tenant_id_gateway_tenants",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("key_hash", name="uq_gateway_api_keys_key_hash"),
    )
    op.create_index("ix_gateway_api_keys_tenant_id", "gateway_api_keys", ["tenant_id"])
    op.create_table(
        "gateway_completion_threads",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("thread_key", sa.String(200), nullable=False),
        sa.Column("conversation_id", sa.String(64), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_gateway_completion_threads"),
        sa.UniqueConstraint("tenant_id", "thread_key", name="uq_gateway_threads_tenant_key"),
    )


def downgrade() -> None:
    op.drop_table("gateway_completion_threads")
    op.drop_index("ix_gateway_api_keys_tenant_id", table_name="gateway_api_keys")
    op.drop_table("gateway_api_keys")
    op.drop_table("gateway_tenants")
