"""All SQL of the job runners: a job's lease (take, renew, give up), queue rounds of jobs whose worker died,
jobs to start at start-up, and sources whose schedule is due. Each write is a compare-and-set on the job row,
so replicas sharing the database never run one job twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard_retrieval.models import IngestionJobRow, SourceRow

OPEN_STATUSES = ("queued", "running")


def _changed(result: Any) -> bool:
    return bool(result.rowcount)


async def take_lease(
    session: AsyncSession, *, job_id: str, generation: int, owner: str, until: datetime, now: datetime
) -> bool:
    """The job's lease for ``owner`` if the job is open, in this queue round, and nobody else holds a live
    lease on it."""
    result = await session.execute(
        update(IngestionJobRow)
        .where(
            IngestionJobRow.id == job_id,
            IngestionJobRow.status.in_(OPEN_STATUSES),
            IngestionJobRow.queue_generation == generation,
            or_(
                IngestionJobRow.lease_owner.is_(None),
                IngestionJobRow.lease_owner == owner,
                IngestionJobRow.lease_expires_at < now,
            ),
        )
        .values(lease_owner=owner, lease_expires_at=until)
    )
    return _changed(result)


async def renew_lease(session: AsyncSession, *, job_id: str, owner: str, until: datetime) -> bool:
    """False when the lease is no longer ``owner``'s (taken over, or the job was deleted)."""
    result = await session.execute(
        update(IngestionJobRow)
        .where(IngestionJobRow.id == job_id, IngestionJobRow.lease_owner == owner)
        .values(lease_expires_at=until)
    )
    return _changed(result)


async def give_up_lease(session: AsyncSession, *, job_id: str, owner: str, requeue: bool) -> int | None:
    """Drops ``owner``'s lease; with ``requeue``, an open job also goes back to the queue in a new round.
    Returns the job's queue round when the row changed (None: not ours, or finished when requeued)."""
    mine = [IngestionJobRow.id == job_id, IngestionJobRow.lease_owner == owner]
    values: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None}
    if requeue:  # only a job still open goes back; a finished one just drops the lease
        mine.append(IngestionJobRow.status.in_(OPEN_STATUSES))
        values |= {"status": "queued", "queue_generation": IngestionJobRow.queue_generation + 1}
    result = await session.execute(
        update(IngestionJobRow).where(*mine).values(**values).returning(IngestionJobRow.queue_generation)
    )
    generation: int | None = result.scalar_one_or_none()
    return generation


def _lease_ran_out(now: datetime, lease: timedelta) -> ColumnElement[bool]:
    """An open job whose lease expired, or a running one with no lease untouched for a lease's length."""
    return or_(
        IngestionJobRow.lease_expires_at < now,
        and_(
            IngestionJobRow.status == "running",
            IngestionJobRow.lease_expires_at.is_(None),
            IngestionJobRow.updated_at < now - lease,
        ),
    )


async def orphaned_jobs(
    session: AsyncSession, *, now: datetime, lease: timedelta, limit: int
) -> list[tuple[str, int, str | None]]:
    """(id, queue round, dead owner) of open jobs whose worker's lease ran out, oldest first."""
    rows = await session.execute(
        select(IngestionJobRow.id, IngestionJobRow.queue_generation, IngestionJobRow.lease_owner)
        .where(IngestionJobRow.status.in_(OPEN_STATUSES), _lease_ran_out(now, lease))
        .order_by(IngestionJobRow.created_at)
        .limit(limit)
    )
    return [(job_id, generation, owner) for job_id, generation, owner in rows.all()]


async def requeue_orphan(
    session: AsyncSession, *, job_id: str, generation: int, now: datetime, lease: timedelta
) -> bool:
    """Puts an orphaned job back in the queue in the next round; False when another replica did first."""
    result = await session.execute(
        update(IngestionJobRow)
        .where(
            IngestionJobRow.id == job_id,
            IngestionJobRow.queue_generation == generation,
            IngestionJobRow.status.in_(OPEN_STATUSES),
            _lease_ran_out(now, lease),
        )
        .values(status="queued", lease_owner=None, lease_expires_at=None, queue_generation=generation + 1)
    )
    return _changed(result)


async def unheld_queued_jobs(session: AsyncSession, *, limit: int) -> list[tuple[str, int]]:
    """(id, queue round) of queued jobs nobody holds, oldest first."""
    rows = await session.execute(
        select(IngestionJobRow.id, IngestionJobRow.queue_generation)
        .where(IngestionJobRow.status == "queued", IngestionJobRow.lease_owner.is_(None))
        .order_by(IngestionJobRow.created_at)
        .limit(limit)
    )
    return [(job_id, generation) for job_id, generation in rows.all()]


async def interrupted_jobs(session: AsyncSession, *, include_running: bool) -> list[str]:
    """Jobs to (re)start: queued ones, and running ones when this process is the only runner."""
    statuses = list(OPEN_STATUSES) if include_running else ["queued"]
    result = await session.execute(
        select(IngestionJobRow.id)
        .where(IngestionJobRow.status.in_(statuses))
        .order_by(IngestionJobRow.created_at)
    )
    return list(result.scalars().all())


async def due_sources(session: AsyncSession, now: datetime) -> list[SourceRow]:
    """Sources with a schedule whose last sync is older than their interval and that have no open job."""
    sources = (
        (await session.execute(select(SourceRow).where(SourceRow.schedule_minutes.is_not(None))))
        .scalars()
        .all()
    )
    open_sources = set(
        (
            await session.execute(
                select(IngestionJobRow.source_id).where(IngestionJobRow.status.in_(OPEN_STATUSES))
            )
        ).scalars()
    )
    due = []
    for source in sources:
        if source.id in open_sources or not source.schedule_minutes:
            continue
        last = source.last_sync_at
        if last is not None and last.tzinfo is None:
            last = last.replace(tzinfo=UTC)
        if last is None or now - last >= timedelta(minutes=source.schedule_minutes):
            due.append(source)
    return due
