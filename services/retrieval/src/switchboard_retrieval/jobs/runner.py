"""Runs ingestion jobs: in-process asyncio tasks by default, or the arq Redis queue when Redis is configured,
so that any replica can pick a job up and a job whose worker died is retried.

The job row in SQL is the record of truth either way; the queue only says which job to run next."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select, update

from switchboard_retrieval.models import IngestionJob, Source
from switchboard_retrieval.settings import RetrievalSettings

log = structlog.get_logger(__name__)

QUEUE_NAME = "switchboard:retrieval:jobs"
JobFunction = Callable[[str], Awaitable[None]]


class JobRunner:
    """In-process runner: at most ``job_concurrency`` syncs at once, interrupted jobs resumed at start-up."""

    backend = "in-process"

    def __init__(self, settings: RetrievalSettings, run_job: JobFunction) -> None:
        self.settings = settings
        self.run_job = run_job
        self.semaphore = asyncio.Semaphore(settings.job_concurrency)
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self, pending_job_ids: list[str]) -> None:
        for job_id in pending_job_ids:
            await self.enqueue(job_id)

    async def enqueue(self, job_id: str) -> None:
        task = asyncio.create_task(self._run(job_id), name=f"ingestion-job-{job_id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, job_id: str) -> None:
        async with self.semaphore:
            try:
                await self.run_job(job_id)
            except Exception:
                log.exception("job_crashed", job_id=job_id)

    async def wait_idle(self) -> None:
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*list(self.tasks), return_exceptions=True)


class ArqJobRunner(JobRunner):
    """Jobs through arq: enqueue into Redis; this replica's worker (like every other's) consumes the queue."""

    backend = "arq"

    def __init__(self, settings: RetrievalSettings, run_job: JobFunction) -> None:
        super().__init__(settings, run_job)
        self.pool: Any = None
        self.worker: Any = None
        self.worker_task: asyncio.Task[None] | None = None

    async def start(self, pending_job_ids: list[str]) -> None:
        from arq import create_pool
        from arq.connections import RedisSettings
        from arq.worker import Worker, func

        assert self.settings.redis_url is not None
        redis_settings = RedisSettings.from_dsn(self.settings.redis_url)
        self.pool = await create_pool(redis_settings, default_queue_name=QUEUE_NAME)
        run_job = self.run_job

        async def sync_source(_ctx: dict[str, Any], job_id: str) -> None:
            await run_job(job_id)

        self.worker = Worker(
            functions=[func(sync_source, name="sync_source", timeout=6 * 3600, max_tries=3)],  # type: ignore[arg-type]
            queue_name=QUEUE_NAME,
            redis_pool=self.pool,
            handle_signals=False,
            max_jobs=self.settings.job_concurrency,
            poll_delay=0.2,
            keep_result=3600,
        )
        self.worker_task = asyncio.create_task(self.worker.async_run(), name="arq-worker")
        for job_id in pending_job_ids:
            await self.enqueue(job_id)

    async def enqueue(self, job_id: str) -> None:
        # The arq job id is the ingestion job id: enqueueing twice is a no-op while it is queued or running.
        await self.pool.enqueue_job("sync_source", job_id, _job_id=f"sync:{job_id}")

    async def wait_idle(self) -> None:  # pragma: no cover - tests poll the job API instead
        await asyncio.sleep(0)

    async def close(self) -> None:
        if self.worker is not None:
            with contextlib.suppress(Exception):
                await self.worker.close()
        if self.worker_task is not None:
            self.worker_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.worker_task
        if self.pool is not None:
            await self.pool.aclose()


def make_runner(settings: RetrievalSettings, run_job: JobFunction) -> JobRunner:
    if settings.redis_url and settings.use_job_queue:
        return ArqJobRunner(settings, run_job)
    return JobRunner(settings, run_job)


async def interrupted_jobs(session: Any, *, include_running: bool) -> list[str]:
    """Jobs to (re)start: queued ones, and running ones when this process is the only runner."""
    statuses = ["queued", "running"] if include_running else ["queued"]
    result = await session.execute(
        select(IngestionJob.id).where(IngestionJob.status.in_(statuses)).order_by(IngestionJob.created_at)
    )
    return list(result.scalars().all())


async def due_sources(session: Any, now: datetime) -> list[Source]:
    """Sources with a schedule whose last sync is older than their interval and that have no open job."""
    sources = (
        (await session.execute(select(Source).where(Source.schedule_minutes.is_not(None)))).scalars().all()
    )
    open_sources = set(
        (
            await session.execute(
                select(IngestionJob.source_id).where(IngestionJob.status.in_(["queued", "running"]))
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


async def mark_interrupted_failed(session: Any, job_id: str, reason: str) -> None:
    await session.execute(
        update(IngestionJob)
        .where(IngestionJob.id == job_id)
        .values(status="failed", error=reason, finished_at=datetime.now(UTC))
    )
