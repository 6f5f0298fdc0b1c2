"""Runs ingestion jobs: in-process asyncio tasks by default, or the arq Redis queue when Redis is configured,
so that any replica can pick a job up and a job whose worker died is retried.

The job row in SQL is the record of truth either way (its SQL is in ``jobs/repository.py``); the queue only
says which job to run next."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from switchboard_retrieval.jobs import repository
from switchboard_retrieval.settings import RetrievalSettings

log = structlog.get_logger(__name__)

QUEUE_NAME = "switchboard:retrieval:jobs"
RECOVERY_BATCH = 200
JobFunction = Callable[[str], Coroutine[Any, Any, None]]


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
    """Jobs through arq: enqueue into Redis; this replica's worker (like every other's) consumes the queue.

    SQL stays the record of truth, and three things keep the queue honest with it:
    - a worker holds a lease on the job it runs (``lease_owner``/``lease_expires_at``, renewed every third
      of ``job_lease_seconds``); a job whose lease ran out belonged to a worker that is gone (killed, or cut
      off from the database), so any replica puts it back in the queue, with a new ``queue_generation`` and
      so a new arq job id (the dead worker's arq entry stays "in progress" for arq's job timeout);
    - every replica re-enqueues its 'queued' rows that nobody holds now and then (arq's job id makes that
      a no-op while the entry exists), so jobs enqueued while Redis was down or lost in a Redis restart run;
    - the arq worker is restarted, with backoff, whenever its poll loop dies on a Redis error.
    """

    backend = "arq"

    def __init__(
        self,
        settings: RetrievalSettings,
        run_job: JobFunction,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        super().__init__(settings, run_job)
        self.sessionmaker = sessionmaker
        self.owner = f"{socket.gethostname()[:60]}/{os.getpid()}/{uuid.uuid4().hex[:12]}"
        self.lease = timedelta(seconds=settings.job_lease_seconds)
        self.beat = settings.job_lease_seconds / 3
        self.pool: Any = None
        self.worker: Any = None
        self.workers: list[Any] = []
        self.held: set[str] = set()
        self.worker_task: asyncio.Task[None] | None = None
        self.upkeep_task: asyncio.Task[None] | None = None

    async def start(self, pending_job_ids: list[str]) -> None:
        from arq import create_pool
        from arq.connections import RedisSettings

        assert self.settings.redis_url is not None
        redis_settings = RedisSettings.from_dsn(self.settings.redis_url)
        self.pool = await create_pool(redis_settings, default_queue_name=QUEUE_NAME)
        self.worker_task = asyncio.create_task(self._consume(), name="arq-worker")
        # ``pending_job_ids`` are the 'queued' rows: the upkeep's first round enqueues them (with their
        # queue round) right away, and puts back the jobs of workers that died.
        del pending_job_ids
        self.upkeep_task = asyncio.create_task(self._upkeep(), name="job-queue-upkeep")

    def _new_worker(self) -> Any:
        from arq.worker import Worker, func

        async def sync_source(_ctx: dict[str, Any], job_id: str, generation: int = 0) -> None:
            await self.run_leased(job_id, generation)

        return Worker(
            functions=[func(sync_source, name="sync_source", timeout=6 * 3600, max_tries=3)],  # type: ignore[arg-type]
            queue_name=QUEUE_NAME,
            redis_pool=self.pool,
            handle_signals=False,
            max_jobs=self.settings.job_concurrency,
            poll_delay=0.2,
            # No arq results: SQL has the outcome, and a kept result would make arq refuse the same job id
            # for as long as it is kept (the upkeep's re-enqueue of a row whose round ended unrun).
            keep_result=0,
        )

    async def _consume(self) -> None:
        """Runs arq's poll loop, and a new one after a Redis error ends it (arq's own loop does not survive
        a lost connection). Jobs the old loop started go on running to their end."""
        loop = asyncio.get_running_loop()
        delay = 0.5
        while True:
            worker = self._new_worker()
            self.worker = worker
            self.workers.append(worker)
            began = loop.time()
            try:
                await worker.main()
                return
            except Exception as exc:
                log.warning("job_worker_restarting", error_type=type(exc).__name__, error=str(exc)[:200])
            if loop.time() - began > 30:
                delay = 0.5
            self.workers = [
                w for w in self.workers if w is worker or any(not t.done() for t in w.tasks.values())
            ]
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def enqueue(self, job_id: str, generation: int = 0) -> None:
        """Queue one round of the job; a Redis error is logged, not raised: the row is committed as
        'queued' and the upkeep loop enqueues it once Redis answers again."""
        try:
            await self.pool.enqueue_job(
                "sync_source", job_id, generation, _job_id=arq_job_id(job_id, generation)
            )
        except (RedisError, OSError) as exc:
            log.warning("job_enqueue_deferred", job_id=job_id, error_type=type(exc).__name__)

    async def run_leased(self, job_id: str, generation: int) -> None:
        """Runs the job under a lease; gives up the job when another worker holds it or it has moved on to
        another queue round, and stops it when the lease was taken over."""
        if not await self._acquire(job_id, generation):
            log.info("job_not_taken", job_id=job_id, generation=generation)
            return
        self.held.add(job_id)
        task = asyncio.create_task(self.run_job(job_id), name=f"ingestion-job-{job_id}")
        requeue = False
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=self.beat)
                if done:
                    task.result()
                    return
                if not await self._renew(job_id):
                    log.warning("job_lease_lost", job_id=job_id)
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                    return
        except asyncio.CancelledError:
            requeue = True
            raise
        finally:
            self.held.discard(job_id)
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await asyncio.shield(self._release(job_id, requeue=requeue))

    async def _acquire(self, job_id: str, generation: int) -> bool:
        now = datetime.now(UTC)
        async with self.sessionmaker() as session:
            taken = await repository.take_lease(
                session,
                job_id=job_id,
                generation=generation,
                owner=self.owner,
                until=now + self.lease,
                now=now,
            )
            await session.commit()
        return taken

    async def _renew(self, job_id: str) -> bool:
        """Extends the lease; False when it is no longer ours (taken over, or the job was deleted)."""
        try:
            async with self.sessionmaker() as session:
                renewed = await repository.renew_lease(
                    session, job_id=job_id, owner=self.owner, until=datetime.now(UTC) + self.lease
                )
                await session.commit()
        except Exception as exc:  # a database blip: keep running, try again at the next beat
            log.warning("job_lease_renew_failed", job_id=job_id, error_type=type(exc).__name__)
            return True
        return renewed

    async def _release(self, job_id: str, *, requeue: bool) -> None:
        """Gives the lease up. When the worker is stopping mid-job, the job goes back to the queue in a new
        round so that another replica (or this one, restarted) carries on without waiting for the lease."""
        try:
            async with self.sessionmaker() as session:
                generation = await repository.give_up_lease(
                    session, job_id=job_id, owner=self.owner, requeue=requeue
                )
                await session.commit()
        except Exception as exc:  # the lease then runs out by itself and another replica takes the job
            log.warning("job_lease_release_failed", job_id=job_id, error_type=type(exc).__name__)
            return
        if requeue and generation is None:  # it finished as it was stopped
            await self._release(job_id, requeue=False)
        elif requeue and generation is not None:
            log.info("job_requeued_on_stop", job_id=job_id, generation=generation)
            await self.enqueue(job_id, generation)

    async def _upkeep(self) -> None:
        while True:
            try:
                await self.recover_orphans()
                await self.requeue_unheld()
            except Exception as exc:  # the database or Redis is down: try again next round
                log.info("job_upkeep_skipped", error_type=type(exc).__name__, error=str(exc)[:200])
            await asyncio.sleep(self.beat)

    async def recover_orphans(self) -> list[str]:
        """Puts back in the queue every open job whose worker's lease ran out (a new queue round each);
        returns their ids. A compare-and-set on the generation lets only one replica take each job."""
        now = datetime.now(UTC)
        async with self.sessionmaker() as session:
            rows = await repository.orphaned_jobs(session, now=now, lease=self.lease, limit=RECOVERY_BATCH)
        recovered = []
        for job_id, generation, owner in rows:
            if job_id in self.held:
                continue
            async with self.sessionmaker() as session:
                requeued = await repository.requeue_orphan(
                    session, job_id=job_id, generation=generation, now=now, lease=self.lease
                )
                await session.commit()
            if not requeued:
                continue
            log.warning("job_recovered", job_id=job_id, dead_owner=owner, generation=generation + 1)
            await self._forget(arq_job_id(job_id, generation))
            await self.enqueue(job_id, generation + 1)
            recovered.append(job_id)
        return recovered

    async def requeue_unheld(self) -> None:
        """Enqueues the 'queued' jobs nobody holds (arq's job id makes this a no-op for those in Redis)."""
        async with self.sessionmaker() as session:
            rows = await repository.unheld_queued_jobs(session, limit=RECOVERY_BATCH)
        for job_id, generation in rows:
            await self.enqueue(job_id, generation)

    async def _forget(self, arq_id: str) -> None:
        """Drops the arq entry of a dead worker's round, which arq would otherwise keep 'in progress' for its
        job timeout and then run once more for nothing."""
        from arq.constants import in_progress_key_prefix, job_key_prefix, retry_key_prefix

        try:
            async with self.pool.pipeline(transaction=True) as pipe:
                pipe.delete(
                    in_progress_key_prefix + arq_id, job_key_prefix + arq_id, retry_key_prefix + arq_id
                )
                pipe.zrem(QUEUE_NAME, arq_id)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            log.info("job_queue_entry_not_dropped", arq_job_id=arq_id, error_type=type(exc).__name__)

    async def wait_idle(self) -> None:  # pragma: no cover - tests poll the job API instead
        await asyncio.sleep(0)

    async def close(self) -> None:
        for background in (self.upkeep_task, self.worker_task):
            if background is not None:
                background.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await background
        # Stop the jobs in flight: each gives its job back to the queue (see run_leased) before arq, in turn,
        # records the attempt in Redis.
        tasks = [t for worker in self.workers for t in worker.tasks.values() if not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.pool is not None:
            with contextlib.suppress(Exception):
                await self.pool.aclose()


def arq_job_id(job_id: str, generation: int) -> str:
    """The arq job id of one queue round of an ingestion job (the first keeps the plain form)."""
    return f"sync:{job_id}" if generation == 0 else f"sync:{job_id}:{generation}"


def make_runner(
    settings: RetrievalSettings, run_job: JobFunction, sessionmaker: async_sessionmaker[AsyncSession]
) -> JobRunner:
    if settings.redis_url and settings.use_job_queue:
        return ArqJobRunner(settings, run_job, sessionmaker)
    return JobRunner(settings, run_job)
