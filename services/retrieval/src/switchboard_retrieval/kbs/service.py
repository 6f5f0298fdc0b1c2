"""Knowledge bases and their sources: create, change, delete (with their vectors, BM25 index and files),
and starting sync jobs."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard_retrieval.curated import repository as curated_repository
from switchboard_retrieval.embeddings.encoders import missing_setting
from switchboard_retrieval.index.vectors import collection_name
from switchboard_retrieval.ingestion.connectors import CONNECTORS, public_config, safe_upload_name
from switchboard_retrieval.ingestion.duplicates import hand_over_copies, passage_key
from switchboard_retrieval.ingestion.fetching import SourceError
from switchboard_retrieval.ingestion.parsing import format_for
from switchboard_retrieval.ingestion.paths import PathPolicy, PathRefused
from switchboard_retrieval.ingestion.service import load_index_rows
from switchboard_retrieval.kbs import repository
from switchboard_retrieval.models import DocumentRow, IngestionJobRow, KnowledgeBaseRow, SourceRow
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
    StoredFile,
    SyncCounts,
)
from switchboard_shared.errors import AppError, ErrorCode


def kb_out(kb: KnowledgeBaseRow, counts: tuple[int, int, int] = (0, 0, 0)) -> KnowledgeBaseOut:
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


def source_out(source: SourceRow) -> SourceOut:
    return SourceOut(
        id=source.id,
        kb_id=source.kb_id,
        type=source.type,
        name=source.name,
        # Where an upload source keeps its files on the server is nobody's business outside it.
        config=public_config(
            {k: v for k, v in source.config.items() if not (source.type == "upload" and k == "path")}
        ),
        tags=list(source.tags),
        schedule_minutes=source.schedule_minutes,
        last_sync_at=source.last_sync_at,
        last_sync_status=source.last_sync_status,
        last_sync_result=source.last_sync_result,
        created_at=source.created_at,
    )


def job_out(job: IngestionJobRow) -> IngestionJobOut:
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
        document_id=job.document_id,
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
) -> KnowledgeBaseRow:
    model = body.embedding_model or rt.settings.default_embedding_model
    check_embedding_model(model, rt.settings)
    if await repository.get_kb_by_name(session, tenant_id=tenant_id, name=body.name) is not None:
        raise AppError(ErrorCode.CONFLICT, f"A knowledge base named {body.name!r} already exists.")
    kb = KnowledgeBaseRow(
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


async def update_kb(
    session: AsyncSession, *, kb: KnowledgeBaseRow, body: KnowledgeBaseUpdate
) -> KnowledgeBaseRow:
    if body.name is not None and body.name != kb.name:
        if await repository.get_kb_by_name(session, tenant_id=kb.tenant_id, name=body.name) is not None:
            raise AppError(ErrorCode.CONFLICT, f"A knowledge base named {body.name!r} already exists.")
        kb.name = body.name
    if body.description is not None:
        kb.description = body.description
    kb.updated_at = datetime.now(UTC)
    await session.flush()
    return kb


async def delete_kb(session: AsyncSession, rt: Runtime, *, kb: KnowledgeBaseRow) -> None:
    await rt.vectors.drop(collection_name(kb.tenant_id, kb.id))
    await rt.bm25.drop(kb.id)
    for folder in upload_folders(rt.settings, tenant_id=kb.tenant_id, kb_id=kb.id):
        await asyncio.to_thread(shutil.rmtree, folder, True)
    await repository.delete_kb_rows(session, kb_id=kb.id)
    # Curated answers outlive their knowledge base, unlinked (they keep answering on their own vectors).
    if await curated_repository.unlink_kb(session, kb_id=kb.id):
        await curated_repository.bump_version(session, tenant_id=kb.tenant_id)
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


UPLOAD_SETTABLE = frozenset({"public_base_url", "public_url_extension"})


def _upload_config(config: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(config) - UPLOAD_SETTABLE)
    if unknown:
        raise AppError(
            ErrorCode.BAD_REQUEST,
            f"An upload source's config takes only {', '.join(sorted(UPLOAD_SETTABLE))}, not {', '.join(unknown)}.",
        )
    return dict(config)


async def create_source(
    session: AsyncSession, *, kb: KnowledgeBaseRow, body: SourceCreate, settings: RetrievalSettings
) -> SourceRow:
    if body.type == "upload":
        return await create_upload_source(
            session,
            kb=kb,
            name=body.name or "Uploaded files",
            config=_upload_config(body.config),
            settings=settings,
            default=False,
            tags=body.tags,
        )
    await validate_source_config(body.type, body.config, settings, tenant_id=kb.tenant_id)
    default_name = str(
        body.config.get("path") or body.config.get("url") or body.config.get("space_key") or body.type
    )
    source = SourceRow(
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


async def create_upload_source(
    session: AsyncSession,
    *,
    kb: KnowledgeBaseRow,
    name: str,
    config: dict[str, Any],
    settings: RetrievalSettings,
    default: bool,
    tags: list[str] | None = None,
) -> SourceRow:
    """An upload source: its files are sent to this service and kept under its upload directory. The
    knowledge base's default one takes the uploads that name no source; others (one per folder the CLI
    syncs) hold exactly the files their uploader keeps there (see ``prune_stored_files``)."""
    await validate_source_config("upload", {**config, "path": "-"}, settings, tenant_id=kb.tenant_id)
    source = SourceRow(
        kb_id=kb.id, tenant_id=kb.tenant_id, type="upload", name=name[:200], config={}, tags=tags or []
    )
    session.add(source)
    await session.flush()
    folder = upload_folders(settings, tenant_id=kb.tenant_id, kb_id=kb.id)[0]
    directory = await asyncio.to_thread(lambda: (folder / source.id).resolve())
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    source.config = {**config, "path": str(directory), "default": default}
    await session.flush()
    return source


async def update_source(
    session: AsyncSession, *, source: SourceRow, body: SourceUpdate, settings: RetrievalSettings
) -> SourceRow:
    if body.config is not None and source.type == "upload":
        kept = {k: v for k, v in source.config.items() if k not in UPLOAD_SETTABLE}
        merged = {**kept, **_upload_config(body.config)}
        await validate_source_config(source.type, merged, settings, tenant_id=source.tenant_id)
        source.config = merged
    elif body.config is not None:
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


async def delete_source(
    session: AsyncSession, rt: Runtime, *, kb: KnowledgeBaseRow, source: SourceRow
) -> None:
    rows = await repository.source_chunk_texts(session, source_id=source.id)
    await repository.delete_source_rows(session, source_id=source.id)
    await session.delete(source)
    kb.index_version += 1
    await session.flush()
    # Texts this source held the indexed copy of go on under another source's copy.
    await hand_over_copies(session, rt, kb=kb, keys={passage_key(text) for _, text in rows})
    await rt.vectors.delete(collection_name(kb.tenant_id, kb.id), [chunk_id for chunk_id, _ in rows])
    if source.type == "upload":
        for folder in upload_folders(rt.settings, tenant_id=kb.tenant_id, kb_id=kb.id):
            await asyncio.to_thread(shutil.rmtree, folder / source.id, True)


def upload_folders(settings: RetrievalSettings, *, tenant_id: str, kb_id: str) -> list[Path]:
    """Where a knowledge base's uploads live: ``uploads/<tenant>/<kb>`` (first), and ``uploads/<kb>`` of
    sources uploaded before uploads were kept per tenant."""
    root = Path(settings.uploads_dir())
    return [root / tenant_id / kb_id, root / kb_id]


async def refresh_bm25(session: AsyncSession, rt: Runtime, *, kb: KnowledgeBaseRow) -> None:
    rows = await load_index_rows(session, kb.id)
    await rt.bm25.rebuild(kb.id, kb.index_version, rows)


async def queue_sync(
    session: AsyncSession, *, source: SourceRow, document: DocumentRow | None = None
) -> tuple[IngestionJobRow, bool]:
    """A queued job that covers the source (or just ``document``) if there is one (False), else a new
    queued job (True); the caller commits and then enqueues it, so the runner never sees a job row that is
    not committed yet. A job already running may have listed the source before this change (an upload in
    several requests), so it is not reused: the new job runs after it (see ``SyncJob.run``)."""
    existing = await repository.queued_job_covering(
        session, source_id=source.id, document_id=document.id if document else None
    )
    if existing is not None:
        return existing, False
    job = IngestionJobRow(
        tenant_id=source.tenant_id,
        kb_id=source.kb_id,
        source_id=source.id,
        document_id=document.id if document else None,
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


def _upload_directory(source: SourceRow) -> Path:
    if source.type != "upload":
        raise AppError(
            ErrorCode.BAD_REQUEST, f"Source {source.id} is a {source.type} source, not an upload one."
        )
    return Path(source.config["path"])


def _stored_path(directory: Path, name: str) -> Path | None:
    """The stored file ``name`` of an upload directory, or None when the name would leave it."""
    target = (directory / name).resolve()
    return target if target.is_relative_to(directory.resolve()) and target != directory.resolve() else None


def _list_stored(directory: Path) -> list[StoredFile]:
    if not directory.is_dir():
        return []
    files = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        name = path.relative_to(directory).as_posix()
        if format_for(name) is None:  # partly written uploads (``.x.part``) and anything unsupported
            continue
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
        files.append(StoredFile(name=name, size=path.stat().st_size, sha256=digest.hexdigest()))
    return files


async def stored_files(source: SourceRow) -> list[StoredFile]:
    return await asyncio.to_thread(_list_stored, _upload_directory(source))


def _remove_stored(directory: Path, names: list[str]) -> None:
    for name in names:
        target = _stored_path(directory, name)
        if target is not None:
            target.unlink(missing_ok=True)
            # Drop folders the removal left empty, up to the source's own directory.
            parent = target.parent
            while parent != directory.resolve() and parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent


async def prune_stored_files(source: SourceRow, keep: list[str]) -> list[str]:
    """Remove the stored files of an upload source that are not in ``keep`` (names as uploaded); the next
    sync then removes their documents. Returns the removed names."""
    directory = _upload_directory(source)
    wanted = {safe_upload_name(name) for name in keep}
    present = await stored_files(source)
    gone = [f.name for f in present if f.name not in wanted]
    await asyncio.to_thread(_remove_stored, directory, gone)
    return gone


async def delete_document(
    session: AsyncSession, rt: Runtime, *, kb: KnowledgeBaseRow, document: DocumentRow
) -> None:
    """Remove a document from the index now: its vectors, chunks and row (BM25 rebuilt by the caller); an
    uploaded file is removed too, so a later sync does not bring it back. A document still present in any
    other kind of source comes back at that source's next sync."""
    if await repository.open_job_for_source(session, source_id=document.source_id, statuses=("running",)):
        raise AppError(
            ErrorCode.CONFLICT, "A sync of this document's source is running; delete it when that sync ends."
        )
    source = await session.get(SourceRow, document.source_id)
    rows = await repository.document_chunk_texts(session, document_id=document.id)
    await repository.delete_document_rows(session, document_id=document.id)
    kb.index_version += 1
    await session.flush()
    # Texts this document held the indexed copy of go on under another document's copy.
    await hand_over_copies(session, rt, kb=kb, keys={passage_key(text) for _, text in rows})
    await rt.vectors.delete(collection_name(kb.tenant_id, kb.id), [chunk_id for chunk_id, _ in rows])
    if source is not None and source.type == "upload":
        await asyncio.to_thread(_remove_stored, Path(source.config["path"]), [document.uri])
