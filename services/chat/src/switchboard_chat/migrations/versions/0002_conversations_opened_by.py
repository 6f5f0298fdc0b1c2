"""Who opened a conversation: integrations for a verified messenger webhook ("inbound") or the public API.

Messenger messages are routed only to conversations integrations opened. Existing messenger conversations
count as opened by integrations when their end user is that messenger's user (``telegram:…``,
``whatsapp:…``, the ids integrations gives); any other is left as opened through the API, so a conversation
a widget or API caller opened with a messenger's chat key never receives that chat's messages.

Revision ID: 0002_conversations_opened_by
Revises: 0001_conversations
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_conversations_opened_by"
down_revision: str | None = "0001_conversations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("chat_conversations") as batch:
        batch.add_column(sa.Column("opened_by", sa.String(16), nullable=False, server_default="api"))
    op.execute(
        "UPDATE chat_conversations SET opened_by = 'inbound' "
        "WHERE (channel = 'telegram' AND end_user_id LIKE 'telegram:%') "
        "OR (channel = 'whatsapp' AND end_user_id LIKE 'whatsapp:%')"
    )


def downgrade() -> None:
    with op.batch_alter_table("chat_conversations") as batch:
        batch.drop_column("opened_by")
