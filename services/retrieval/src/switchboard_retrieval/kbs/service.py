"""Knowledge bases and their sources: create, change, delete (with their vectors, BM25 index and files),
and starting sync jobs."""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard_retrieval.embeddings.models import missing_setting
from switchboard_retrieval.index.vectors import collection_name
from switchboard_retrieval.ingestion.connectors import CONNECTORS, public_config
from switchboard_retrieval.ingestion.fetching import SourceError
from switchboard_retrieval.ingestion.paths import PathPolicy, PathRefused
from switchboard_retrieval.ingestion.service import load_index_rows
from switchboard_retrieval.kbs import repository
from switchboard_retrieval.models import Chunk, Document, IngestionJob, KnowledgeBase, Source
from switchboard_retrieval.runtime import Runtime
from switchboard_retrieval.settings import RetrievalSettings
from switchboard_shared.contracts.retrieval import (
    IngestionJobOut,
    KnowledgeBaseCreate,
    KnowledgeBaseOut,
    KnowledgeBaseUpdate,
    SourceCreate,
    SourceOut,
    SourceUpdate,
    SyncCounts,
)
from switchboard_shared.errors import AppError, ErrorCode


def kb_out(kb: KnowledgeBase, counts: tuple[int, int, int] = (0, 0, 0)) -> KnowledgeBaseOut:
    return KnowledgeBaseOut(
        id=kb.id,
        name=kb.name,
        description=kb.description,
        embedding_model=kb.embedding_model,
        document_count=counts[0],
        chunk_count=counts[1],
        source_count=counts[2],
        created_at=kb.created_at,
        updated_at=kb.updated_at,
    )


def source_out(source: Source) -> SourceOut:
    return SourceOut(
        id=source.id,
        kb_id=source.kb_id,
        type=source.type,
        name=source.name,
        config=public_config(source.config),
        tags=list(source.tags),
        schedule_minutes=source.schedule_minutes,
        last_sync_at=source.last_sync_at,
        last_sync_status=source.last_sync_status,
        last_sync_result=source.last_sync_result,
        created_at=source.created_at,
    )


def job_out(job: IngestionJob) -> IngestionJobOut:
    rate_docs = rate_chunks = eta = None
    if job.started_at is not None:
        started = job.started_at if job.started_at.tzinfo else job.started_at.replace(tzinfo=UTC)
        end = job.finished_at or datetime.now(UTC)
        end = end if end.tzinfo else end.replace(tzinfo=UTC)
        elapsed = max((end - started).total_seconds(), 1e-3)
        done = job.documents_done + job.documents_failed
        rate_docs = round(done / elapsed, 3)
        rate_chunks = round(job.chunks_embedded / elapsed, 3)
        total = int((job.counts or {}).get("documents_total") or 0) or job.documents_seen
        if job.status == "running" and rate_docs > 0:
            eta = round(max(total - done, 0) / rate_docs, 1)
        elif job.status in ("succeeded", "failed"):
            eta = 0.0
    counts = {k: v for k, v in (job.counts or {}).items() if k in SyncCounts.model_fields}
    return IngestionJobOut(
        id=job.id,
        kb_id=job.kb_id,
        source_id=job.source_id,
        status=job.status,  # type: ignore[arg-type]
        documents_total=(job.counts or {}).get("documents_total"),
        documents_seen=job.documents_seen,
        documents_done=job.documents_done,
        documents_failed=job.documents_failed,
        chunks_embedded=job.chunks_embedded,
        counts=SyncCounts(**counts),
        failures=list(job.failures or []),  # type: ignore[arg-type]
        error=job.error,
        attempts=job.attempts,
        rate_docs_per_s=rate_docs,
        rate_chunks_per_s=rate_chunks,
        eta_seconds=eta,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


async def create_kb(
    session: AsyncSession, rt: Runtime, *, tenant_id: str, body: KnowledgeBaseCreate
) -> KnowledgeBase:
    model = body.embedding_model or rt.settings.default_embedding_model
    check_embedding_model(model, rt.settings)
    if await repository.get_kb_by_name(session, tenant_id=tenant_id, name=body.name) is not None:
        raise AppError(ErrorCode.CONFLICT, f"A knowledge base named {body.name!r} already exists.")
    kb = KnowledgeBase(
        tenant_id=tenant_id,
        name=body.name,
        description=body.description,
        embedding_model=model,
        index_version=0,
    )
    session.add(kb)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise AppError(ErrorCode.CONFLICT, f"A knowledge base named {body.name!r} already exists.") from exc
    return kb


def check_embedding_model(model: str, settings: RetrievalSettings) -> None:
    """Refuse a hosted embedding model whose API key this service lacks: such a knowledge base could never
    be ingested nor searched."""
    missing = missing_setting(model, settings)
    if missing is not None:
        raise AppError(
            ErrorCode.VALIDATION_ERROR,
            f"The embedding model {model!r} needs {missing}, which is not configured on the retrieval "
            "service; choose another embedding model or set it.",
        )


async def update_kb(session: AsyncSession, *, kb: KnowledgeBase, body: KnowledgeBaseUpdate) -> KnowledgeBase:
    if body.name is not None and body.name != kb.name:
        if await repository.get_kb_by_name(session, tenant_id=kb.tenant_id, name=body.name) is not None:
            raise AppError(ErrorCode.CONFLICT, f"A knowledge base named {body.name!r} already exists.")
        kb.name = body.name
    if body.description is not None:
        kb.description = body.description
    kb.updated_at = datetime.now(UTC)
    await session.flush()
    return kb


async def delete_kb(session: AsyncSession, rt: Runtime, *, kb: KnowledgeBase) -> None:
    await rt.vectors.drop(collection_name(kb.tenant_id, kb.id))
    await rt.bm25.drop(kb.id)
    for folder in upload_folders(rt.settings, tenant_id=kb.tenant_id, kb_id=kb.id):
        await asyncio.to_thread(shutil.rmtree, folder, True)
    # Explicit deletes rather than relying on ON DELETE CASCADE alone: SQLite only cascades with the pragma.
    await session.execute(delete(IngestionJob).where(IngestionJob.kb_id == kb.id))
    await session.execute(delete(Chunk).where(Chunk.kb_id == kb.id))
    await session.execute(delete(Document).where(Document.kb_id == kb.id))
    await session.execute(delete(Source).where(Source.kb_id == kb.id))
    await session.delete(kb)
    await session.flush()


async def validate_source_config(
    source_type: str, config: dict[str, Any], settings: RetrievalSettings, *, tenant_id: str
) -> None:
    try:
        CONNECTORS[source_type].validate(config)
        if source_type in ("files", "faq"):
            await PathPolicy(settings, tenant_id).check(str(config["path"]))
    except PathRefused as exc:
        raise AppError(ErrorCode.FORBIDDEN, f"Invalid {source_type} source: {exc}") from exc
    except SourceError as exc:
        raise AppError(ErrorCode.BAD_REQUEST, f"Invalid {source_type} source: {exc}") from exc


async def create_source(
    session: AsyncSession, *, kb: KnowledgeBase, body: SourceCreate, settings: RetrievalSettings
) -> Source:
    if body.type == "upload":
        raise AppError(ErrorCode.BAD_REQUEST, "Upload sources are made by POST /kbs/{kb_id}/files.")
    await validate_source_config(body.type, body.config, settings, tenant_id=kb.tenant_id)
    default_name = str(
        body.config.get("path") or body.config.get("url") or body.config.get("space_key") or body.type
    )
    source = Source(
        kb_id=kb.id,
        tenant_id=kb.tenant_id,
        type=body.type,
        name=(body.name or default_name)[:200],
        config=body.config,
        tags=body.tags,
        schedule_minutes=body.schedule_minutes,
    )
    session.add(source)
    await session.flush()
    return source


async def update_source(
    session: AsyncSession, *, source: Source, body: SourceUpdate, settings: RetrievalSettings
) -> Source:
    if body.config is not None:
        if source.type == "upload":
            raise AppError(ErrorCode.BAD_REQUEST, "The config of an upload source cannot be changed.")
        # Masked secrets sent back unchanged keep their stored value.
        merged = {k: (source.config.get(k) if v == "***" else v) for k, v in body.config.items()}
        await validate_source_config(source.type, merged, settings, tenant_id=source.tenant_id)
        source.config = merged
    if body.name is not None:
        source.name = body.name
    if body.tags is not None:
        source.tags = body.tags
    if "schedule_minutes" in body.model_fields_set:
        source.schedule_minutes = body.schedule_minutes
    source.updated_at = datetime.now(UTC)
    await session.flush()
    return source


async def delete_source(session: AsyncSession, rt: Runtime, *, kb: KnowledgeBase, source: Source) -> None:
    chunk_ids = list((await session.execute(select(Chunk.id).where(Chunk.source_id == source.id))).scalars())
    await rt.vectors.delete(collection_name(kb.tenant_id, kb.id), chunk_ids)
    await session.execute(delete(IngestionJob).where(IngestionJob.source_id == source.id))
    await session.execute(delete(Chunk).where(Chunk.source_id == source.id))
    await session.execute(delete(Document).where(Document.source_id == source.id))
    await session.delete(source)
    kb.index_version += 1
    await session.flush()
    if source.type == "upload":
        for folder in upload_folders(rt.settings, tenant_id=kb.tenant_id, kb_id=kb.id):
            await asyncio.to_thread(shutil.rmtree, folder / source.id, True)


def upload_folders(settings: RetrievalSettings, *, tenant_id: str, kb_id: str) -> list[Path]:
    """Where a knowledge base's uploads live: ``uploads/<tenant>/<kb>`` (first), and ``uploads/<kb>`` of
    sources uploaded before uploads were kept per tenant."""
    root = Path(settings.uploads_dir())
    return [root / tenant_id / kb_id, root / kb_id]


async def refresh_bm25(session: AsyncSession, rt: Runtime, *, kb: KnowledgeBase) -> None:
    rows = await load_index_rows(session, kb.id)
    await rt.bm25.rebuild(kb.id, kb.index_version, rows)


async def queue_sync(session: AsyncSession, *, source: Source) -> tuple[IngestionJob, bool]:
    """The source's queued job if it has one (False), else a new queued job (True); the caller commits and
    then enqueues it, so the runner never sees a job row that is not committed yet. A job already running
    may have listed the source before this change (an upload in several requests), so it is not reused:
    the new job runs after it (see ``SyncJob.run``)."""
    existing = await repository.open_job_for_source(session, source_id=source.id, statuses=("queued",))
    if existing is not None:
        return existing, False
    job = IngestionJob(
        tenant_id=source.tenant_id,
        kb_id=source.kb_id,
        source_id=source.id,
        status="queued",
        documents_seen=0,
        documents_done=0,
        documents_failed=0,
        chunks_embedded=0,
        counts={},
        failures=[],
        attempts=0,
    )
    session.add(job)
    await session.flush()
    return job, True
