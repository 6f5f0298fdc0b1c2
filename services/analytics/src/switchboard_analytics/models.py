"""Imports every table of the analytics service so Alembic and tests see the whole metadata."""

from switchboard_analytics.db import Base
from switchboard_analytics.events.models import ConversationFactRow, RollupRow, StoredEventRow
from switchboard_analytics.posthog_export.models import ExportCursorRow

__all__ = ["Base", "ConversationFactRow", "ExportCursorRow", "RollupRow", "StoredEventRow"]
