"""All SQL of the reports: rollup sums over a UTC window, per-hour series, conversation aggregates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard_analytics.events.models import ConversationFactRow, RollupRow


@dataclass(frozen=True, slots=True)
class Window:
    """A UTC window split into whole UTC days (daily rollups) and edge hours (hourly rollups)."""

    start_hour: datetime
    end_hour: datetime
    first_day: datetime | None
    end_day: datetime | None

    def parts(self) -> list[tuple[str, datetime, datetime]]:
        """(grain, from, to) ranges; each is one index range scan of the rollups' primary key."""
        if self.first_day is None or self.end_day is None:
            return [("h", self.start_hour, self.end_hour)]
        parts = _split(("d", self.first_day, self.end_day), "m", _ceil_month, _floor_month)
        if self.start_hour < self.first_day:
            parts.append(("h", self.start_hour, self.first_day))
        if self.end_day < self.end_hour:
            parts.append(("h", self.end_day, self.end_hour))
        return parts


def _floor_month(moment: datetime) -> datetime:
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _ceil_month(moment: datetime) -> datetime:
    floor = _floor_month(moment)
    if floor == moment:
        return floor
    return (
        floor.replace(year=floor.year + 1, month=1)
        if floor.month == 12
        else floor.replace(month=floor.month + 1)
    )


def _split(
    part: tuple[str, datetime, datetime],
    coarse: str,
    ceil: Callable[[datetime], datetime],
    floor: Callable[[datetime], datetime],
) -> list[tuple[str, datetime, datetime]]:
    """Cover [start, end) of a fine grain with whole coarse buckets in the middle and fine edges."""
    grain, start, end = part
    inner_start, inner_end = ceil(start), floor(end)
    if inner_start >= inner_end:
        return [part]
    parts = [(coarse, inner_start, inner_end)]
    if start < inner_start:
        parts.append((grain, start, inner_start))
    if inner_end < end:
        parts.append((grain, inner_end, end))
    return parts


def _window_rows(tenant_id: str, window: Window, metrics: list[str], keys: list[str] | None = None) -> Any:
    """The rollup rows of the window, as a UNION ALL of primary-key range scans."""
    selects = []
    for grain, start, end in window.parts():
        query = select(RollupRow.metric, RollupRow.key, RollupRow.count, RollupRow.total).where(
            RollupRow.tenant_id == tenant_id,
            RollupRow.grain == grain,
            RollupRow.metric.in_(metrics),
            RollupRow.bucket >= start,
            RollupRow.bucket < end,
        )
        if keys is not None:
            query = query.where(RollupRow.key.in_(keys))
        selects.append(query)
    return union_all(*selects).subquery() if len(selects) > 1 else selects[0].subquery()


async def rollup_sums(
    session: AsyncSession, *, tenant_id: str, window: Window, metrics: list[str]
) -> dict[str, dict[str, tuple[int, float]]]:
    """metric → key → (count, total) over the window."""
    rows = _window_rows(tenant_id, window, metrics)
    query = select(rows.c.metric, rows.c.key, func.sum(rows.c.count), func.sum(rows.c.total)).group_by(
        rows.c.metric, rows.c.key
    )
    result: dict[str, dict[str, tuple[int, float]]] = {metric: {} for metric in metrics}
    for metric, key, count, total in (await session.execute(query)).all():
        result[metric][key] = (int(count or 0), float(total or 0.0))
    return result


async def top_keys(
    session: AsyncSession,
    *,
    tenant_id: str,
    window: Window,
    metric: str,
    limit: int,
    prefix: str | None = None,
) -> list[tuple[str, int]]:
    """The metric's most counted keys in the window (only those starting with ``prefix``, if given)."""
    rows = _window_rows(tenant_id, window, [metric])
    total = func.sum(rows.c.count).label("n")
    query = select(rows.c.key, total)
    if prefix:
        query = query.where(rows.c.key.startswith(prefix, autoescape=True))
    query = query.group_by(rows.c.key).order_by(total.desc(), rows.c.key).limit(limit)
    return [(key, int(count)) for key, count in (await session.execute(query)).all()]


async def metric_total(session: AsyncSession, *, tenant_id: str, window: Window, metric: str) -> int:
    rows = _window_rows(tenant_id, window, [metric])
    total = (await session.execute(select(func.coalesce(func.sum(rows.c.count), 0)))).scalar_one()
    return int(total)


async def key_counts(
    session: AsyncSession, *, tenant_id: str, window: Window, metric: str, keys: list[str]
) -> dict[str, int]:
    if not keys:
        return {}
    rows = _window_rows(tenant_id, window, [metric], keys)
    query = select(rows.c.key, func.sum(rows.c.count)).group_by(rows.c.key)
    return {key: int(count) for key, count in (await session.execute(query)).all()}


async def daily_series(
    session: AsyncSession,
    *,
    tenant_id: str,
    day_starts: list[datetime],
    end: datetime,
    metric: str,
    keys: list[str],
) -> list[tuple[int, str, int]]:
    """(day index, key, count) from hourly rollups; an hour counts on the local day it starts in."""
    whens = [(RollupRow.bucket < boundary, index) for index, boundary in enumerate(day_starts[1:])]
    day = (case(*whens, else_=len(day_starts) - 1) if whens else literal(0)).label("day")
    query = (
        select(day, RollupRow.key, func.sum(RollupRow.count))
        .where(
            RollupRow.tenant_id == tenant_id,
            RollupRow.grain == "h",
            RollupRow.metric == metric,
            RollupRow.bucket >= day_starts[0],
            RollupRow.bucket < end,
            RollupRow.key.in_(keys),
        )
        .group_by(day, RollupRow.key)
    )
    return [(int(index), key, int(count)) for index, key, count in (await session.execute(query)).all()]


def _flag(condition: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


async def open_window_candidates(
    session: AsyncSession,
    *,
    tenant_id: str,
    start: datetime,
    end: datetime,
    recontact_seconds: float,
    active_after: datetime,
) -> tuple[int, int]:
    """Conversations started in [start, end) still inside their re-contact window that have not failed
    yet: (count, of which the last answer was a 'no answer'). Reads only recently active rows."""
    c = ConversationFactRow
    negative = or_(c.negative_feedback > 0, and_(c.csat_score.is_not(None), c.csat_score <= 2))
    recontacted = and_(c.recontact_gap_seconds.is_not(None), c.recontact_gap_seconds <= recontact_seconds)
    candidate = and_(c.answers > 0, c.handoffs == 0, ~negative, ~recontacted)
    # Only one range can drive the index scan; SQLite's planner cannot tell which is narrower (usually
    # the open window: days of activity against a month or a quarter of starts), so the other range is
    # wrapped in a no-op function to keep it off the index.
    started: Any = c.started_at
    active: Any = c.last_activity_at
    if (datetime.now(UTC) - active_after) < (end - start):
        started = func.coalesce(c.started_at, c.started_at)
    else:
        active = func.coalesce(c.last_activity_at, c.last_activity_at)
    query = select(_flag(candidate), _flag(and_(candidate, c.last_answer_no_answer.is_(True)))).where(
        c.tenant_id == tenant_id, active > active_after, started >= start, started < end
    )
    row = (await session.execute(query)).one()
    return int(row[0] or 0), int(row[1] or 0)
