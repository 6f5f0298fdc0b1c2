"""Imports every table of the chat service so Alembic and tests see the whole metadata."""

from switchboard_chat.assistant.models import AssistantSettingsRow
from switchboard_chat.conversations.models import (
    ConversationRow,
    CsatRow,
    EndUserRow,
    FeedbackRow,
    MessageRow,
    TransitionRow,
)
from switchboard_chat.db import Base

__all__ = [
    "AssistantSettingsRow",
    "Base",
    "ConversationRow",
    "CsatRow",
    "EndUserRow",
    "FeedbackRow",
    "MessageRow",
    "TransitionRow",
]
