"""Imports every table of the analytics service so Alembic and tests see the whole metadata."""

from switchboard_analytics.db import Base
from switchboard_analytics.events.models import ConversationFact, Rollup, StoredEvent
from switchboard_analytics.posthog_export.models import ExportCursor

__all__ = ["Base", "ConversationFact", "ExportCursor", "Rollup", "StoredEvent"]
