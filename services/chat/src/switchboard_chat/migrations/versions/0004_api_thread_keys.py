"""An OpenAI client's thread is the conversation chat keeps for its key: conversations the gateway opened
for a thread (``metadata.thread``) get it as their ``external_key``, so the thread continues once the
gateway stops keeping its own map (gateway revision 0002_threads_move_to_chat).

Revision ID: 0004_api_thread_keys
Revises: 0003_suggestion_outbox
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004_api_thread_keys"
down_revision: str | None = "0003_suggestion_outbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    thread = (
        "metadata ->> 'thread'"
        if op.get_bind().dialect.name == "postgresql"
        else "json_extract(metadata, '$.thread')"
    )
    op.execute(
        f"UPDATE chat_conversations SET external_key = {thread} "
        f"WHERE channel = 'api' AND opened_by = 'api' AND external_key IS NULL "
        f"AND {thread} IS NOT NULL AND length({thread}) <= 200"
    )


def downgrade() -> None:
    pass  # the keys stay: a conversation opened for a thread keeps naming it
