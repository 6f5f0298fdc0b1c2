"""SQL of the PostHog export: the leased cursor and the events after it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard_analytics.events.models import StoredEventRow
from switchboard_analytics.events.repository import _insert
from switchboard_analytics.posthog_export.models import ExportCursorRow


async def claim(
    session: AsyncSession, *, name: str, owner: str, now: datetime, until: datetime
) -> ExportCursorRow | None:
    """Take (or renew) the cursor's lease; None when another replica holds it."""
    await session.execute(
        _insert(session, ExportCursorRow)
        .values(name=name, last_seq=0, exported=0)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    result = await session.execute(
        update(ExportCursorRow)
        .where(
            ExportCursorRow.name == name,
            or_(
                ExportCursorRow.lease_owner.is_(None),
                ExportCursorRow.lease_owner == owner,
                ExportCursorRow.lease_until < now,
            ),
        )
        .values(lease_owner=owner, lease_until=until)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return await session.get(ExportCursorRow, name, populate_existing=True)


async def events_after(
    session: AsyncSession, *, seq: int, received_before: datetime, limit: int
) -> Sequence[StoredEventRow]:
    query = (
        select(StoredEventRow)
        .where(StoredEventRow.seq > seq, StoredEventRow.received_at < received_before)
        .order_by(StoredEventRow.seq)
        .limit(limit)
    )
    return (await session.execute(query)).scalars().all()


async def advance(session: AsyncSession, *, name: str, owner: str, seq: int, count: int) -> None:
    await session.execute(
        update(ExportCursorRow)
        .where(ExportCursorRow.name == name, ExportCursorRow.lease_owner == owner)
        .values(last_seq=seq, exported=ExportCursorRow.exported + count, last_error=None)
    )


async def record_error(session: AsyncSession, *, name: str, owner: str, error: str) -> None:
    await session.execute(
        update(ExportCursorRow)
        .where(ExportCursorRow.name == name, ExportCursorRow.lease_owner == owner)
        .values(last_error=error[:500])
    )


async def release(session: AsyncSession, *, name: str, owner: str) -> None:
    await session.execute(
        update(ExportCursorRow)
        .where(ExportCursorRow.name == name, ExportCursorRow.lease_owner == owner)
        .values(lease_owner=None, lease_until=None)
    )
