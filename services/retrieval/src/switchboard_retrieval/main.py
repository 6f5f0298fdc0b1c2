"""Builds the retrieval service app: ``create_app(settings)`` with a lifespan that owns every pooled resource."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from switchboard_retrieval.curated.endpoints import router as curated_router
from switchboard_retrieval.curated.suggestion_endpoints import router as suggestions_router
from switchboard_retrieval.embeddings.encoders import EmbeddingRegistry
from switchboard_retrieval.index.bm25 import Bm25Store
from switchboard_retrieval.index.spelling import language_words
from switchboard_retrieval.index.vectors import VectorStore, open_client
from switchboard_retrieval.ingestion.chunking import Chunker
from switchboard_retrieval.ingestion.fetching import Fetcher
from switchboard_retrieval.ingestion.paths import DEMO_TENANT
from switchboard_retrieval.ingestion.service import SourceSync
from switchboard_retrieval.jobs.endpoints import router as jobs_router
from switchboard_retrieval.jobs.repository import due_sources, interrupted_jobs
from switchboard_retrieval.jobs.runner import make_runner
from switchboard_retrieval.kbs import repository
from switchboard_retrieval.kbs.endpoints import router as kbs_router
from switchboard_retrieval.kbs.service import queue_sync
from switchboard_retrieval.models import KnowledgeBaseRow, SourceRow
from switchboard_retrieval.runtime import Runtime
from switchboard_retrieval.search.endpoints import router as search_router
from switchboard_retrieval.settings import RetrievalSettings
from switchboard_retrieval.similarity.endpoints import router as similarity_router
from switchboard_retrieval.similarity.service import VectorCache
from switchboard_shared.app import build_app
from switchboard_shared.platform import open_platform

log = structlog.get_logger(__name__)

DEMO_KB = "demo"


async def ensure_demo_kb(rt: Runtime, directory: str) -> str | None:
    """The 'demo' knowledge base of tenant 'demo' with a files source over ``directory``, synced (a
    re-sync of unchanged files re-embeds nothing). Returns the job id when a sync was queued."""
    path = await asyncio.to_thread(lambda: str(Path(directory).resolve()))
    if not await asyncio.to_thread(Path(path).is_dir):
        log.warning("demo_kb_dir_missing", path=path)
        return None
    async with rt.sessionmaker() as session:
        kb = await repository.get_kb_by_name(session, tenant_id=DEMO_TENANT, name=DEMO_KB)
        if kb is None:
            kb = KnowledgeBaseRow(
                tenant_id=DEMO_TENANT,
                name=DEMO_KB,
                description="Sample help centre of a fictional online shop (Russian and English)",
                embedding_model=rt.settings.default_embedding_model,
                index_version=0,
            )
            session.add(kb)
            await session.flush()
        sources = await repository.list_sources(session, kb_id=kb.id)
        source = next((s for s in sources if s.type == "files" and s.name == "demo help centre"), None)
        if source is None:
            source = SourceRow(
                kb_id=kb.id,
                tenant_id=DEMO_TENANT,
                type="files",
                name="demo help centre",
                config={"path": path},
                tags=["demo"],
            )
            session.add(source)
            await session.flush()
        elif source.config.get("path") != path:
            source.config = {"path": path}
        job, new = await queue_sync(session, source=source)
        await session.commit()
    if new:
        await rt.jobs.enqueue(job.id)
    return job.id


async def _scheduler(rt: Runtime, platform: Any) -> None:
    interval = rt.settings.scheduler_interval_seconds
    while True:
        await asyncio.sleep(interval)
        try:
            async with platform.stores.locks.hold("retrieval:scheduler", ttl=interval, timeout=0.1):
                async with rt.sessionmaker() as session:
                    queued = []
                    for source in await due_sources(session, datetime.now(UTC)):
                        job, new = await queue_sync(session, source=source)
                        if new:
                            queued.append(job.id)
                    await session.commit()
                for job_id in queued:
                    await rt.jobs.enqueue(job_id)
        except Exception as exc:  # the scheduler must outlive a failed round (lock held elsewhere, DB blip)
            log.info("scheduler_round_skipped", error_type=type(exc).__name__, error=str(exc)[:200])


def create_app(settings: RetrievalSettings | None = None) -> FastAPI:
    settings = settings or RetrievalSettings()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        async with open_platform(
            settings,
            migrations_package="switchboard_retrieval",
            downstreams=["analytics"],
            auto_migrate=settings.auto_migrate,
        ) as platform:
            sessionmaker: async_sessionmaker[AsyncSession] | None = platform.sessionmaker
            assert sessionmaker is not None
            client = await asyncio.to_thread(open_client, settings)
            vectors = VectorStore(client)
            platform.readiness.add_check("chroma", vectors.ping)
            embeddings = EmbeddingRegistry(settings)
            fetcher = Fetcher(settings)
            holder: dict[str, Runtime] = {}

            async def run_job(job_id: str) -> None:
                await SourceSync(holder["rt"], job_id).run()

            runner = make_runner(settings, run_job, sessionmaker)
            rt = Runtime(
                settings=settings,
                sessionmaker=sessionmaker,
                embeddings=embeddings,
                vectors=vectors,
                bm25=Bm25Store(settings.bm25_dir()),
                fetcher=fetcher,
                chunker=Chunker(chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap),
                jobs=runner,
            )
            holder["rt"] = rt
            if settings.spelling_correction:
                await asyncio.to_thread(language_words)  # read now, not during the first search
            async with sessionmaker() as session:
                pending = await interrupted_jobs(session, include_running=runner.backend == "in-process")
            await runner.start(pending)
            if settings.demo_kb_dir:
                await ensure_demo_kb(rt, settings.demo_kb_dir)
            scheduler = (
                asyncio.create_task(_scheduler(rt, platform), name="source-scheduler")
                if settings.scheduler_interval_seconds > 0
                else None
            )
            try:
                yield {
                    "platform": platform,
                    "readiness": platform.readiness,
                    "runtime": rt,
                    "similarity_cache": VectorCache(settings.similarity_cache_size),
                }
            finally:
                if scheduler is not None:
                    scheduler.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await scheduler
                await runner.close()
                await fetcher.close()
                embeddings.close()

    app = build_app(
        settings,
        title="Switchboard retrieval",
        description="Knowledge bases, ingestion and hybrid search over ChromaDB.",
        lifespan=lifespan,
        body_limit_overrides={"/internal/v1/kbs/": settings.max_upload_bytes * 8 + 1_048_576},
    )
    app.include_router(kbs_router)
    app.include_router(jobs_router)
    app.include_router(search_router)
    app.include_router(similarity_router)
    app.include_router(suggestions_router)  # before curated_router: its /{answer_id} would take /suggestions
    app.include_router(curated_router)
    return app
