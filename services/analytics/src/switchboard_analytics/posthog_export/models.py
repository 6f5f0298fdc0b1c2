"""The export cursor: how far the PostHog forwarder got, and which replica holds the lease."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from switchboard_analytics.columns import UTCDateTime
from switchboard_analytics.db import Base


class ExportCursorRow(Base):
    __tablename__ = "analytics_export_cursors"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    exported: Mapped[int] = mapped_column(BigInteger, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
