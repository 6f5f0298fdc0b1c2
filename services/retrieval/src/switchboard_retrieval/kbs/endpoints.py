"""Admin API of knowledge bases, their sources, uploads, documents and chunks (``/internal/v1/kbs``)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Query, Response, UploadFile
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard_retrieval.deps import KnowledgeBaseDep, RuntimeDep
from switchboard_retrieval.ingestion.connectors import safe_upload_name, upload_extensions
from switchboard_retrieval.ingestion.parsing import format_for
from switchboard_retrieval.kbs import repository, service
from switchboard_retrieval.models import DocumentRow, SourceRow
from switchboard_retrieval.runtime import Runtime
from switchboard_shared.contracts.common import Page
from switchboard_shared.contracts.retrieval import (
    ChunkOut,
    DocumentOut,
    IngestionJobOut,
    KnowledgeBaseCreate,
    KnowledgeBaseOut,
    KnowledgeBaseUpdate,
    SourceCreate,
    SourceCreated,
    SourceOut,
    SourceUpdate,
    StoredFile,
    StoredFilesPrune,
    StoredFilesPruned,
    UploadAccepted,
)
from switchboard_shared.deps import PageOffset, SessionDep, TenantDep
from switchboard_shared.errors import AppError, ErrorCode, error_responses

router = APIRouter(prefix="/internal/v1/kbs", tags=["knowledge bases"])
UPLOAD_READ = 1024 * 1024


async def _start_sync(
    session: AsyncSession, rt: Runtime, source: SourceRow, document: DocumentRow | None = None
) -> IngestionJobOut:
    """Queue a sync of the source (or one document of it), committed before the runner is told."""
    job, new = await service.queue_sync(session, source=source, document=document)
    await session.commit()
    if new:
        await rt.jobs.enqueue(job.id)
    return service.job_out(job)


@router.post("", status_code=201, responses=error_responses(400, 409, 422))
async def create_kb(
    body: KnowledgeBaseCreate, session: SessionDep, tenant_id: TenantDep, rt: RuntimeDep
) -> KnowledgeBaseOut:
    kb = await service.create_kb(session, rt, tenant_id=tenant_id, body=body)
    return service.kb_out(kb)


@router.get("", responses=error_responses(400))
async def list_kbs(
    session: SessionDep,
    tenant_id: TenantDep,
    name: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: PageOffset = 0,
) -> Page[KnowledgeBaseOut]:
    kbs, total = await repository.list_kbs(
        session, tenant_id=tenant_id, limit=limit, offset=offset, name=name
    )
    counts = await repository.kb_counts(session, [kb.id for kb in kbs])
    return Page(
        items=[service.kb_out(kb, counts[kb.id]) for kb in kbs], total=total, limit=limit, offset=offset
    )


@router.get("/{kb_id}", responses=error_responses(404))
async def get_kb(kb: KnowledgeBaseDep, session: SessionDep) -> KnowledgeBaseOut:
    counts = await repository.kb_counts(session, [kb.id])
    return service.kb_out(kb, counts[kb.id])


@router.patch("/{kb_id}", responses=error_responses(404, 409))
async def update_kb(kb: KnowledgeBaseDep, body: KnowledgeBaseUpdate, session: SessionDep) -> KnowledgeBaseOut:
    kb = await service.update_kb(session, kb=kb, body=body)
    counts = await repository.kb_counts(session, [kb.id])
    return service.kb_out(kb, counts[kb.id])


@router.delete("/{kb_id}", status_code=204, responses=error_responses(404))
async def delete_kb(kb: KnowledgeBaseDep, session: SessionDep, rt: RuntimeDep) -> Response:
    await service.delete_kb(session, rt, kb=kb)
    return Response(status_code=204)


@router.post("/{kb_id}/sources", status_code=201, responses=error_responses(400, 403, 404))
async def create_source(
    kb: KnowledgeBaseDep, body: SourceCreate, session: SessionDep, rt: RuntimeDep
) -> SourceCreated:
    source = await service.create_source(session, kb=kb, body=body, settings=rt.settings)
    job = None
    if body.sync:
        job = await _start_sync(session, rt, source)
    return SourceCreated(source=service.source_out(source), job=job)


@router.get("/{kb_id}/sources", responses=error_responses(404))
async def list_sources(kb: KnowledgeBaseDep, session: SessionDep) -> list[SourceOut]:
    return [service.source_out(s) for s in await repository.list_sources(session, kb_id=kb.id)]


@router.get("/{kb_id}/sources/{source_id}", responses=error_responses(404))
async def get_source(kb: KnowledgeBaseDep, source_id: str, session: SessionDep) -> SourceOut:
    return service.source_out(await repository.get_source_or_404(session, kb=kb, source_id=source_id))


@router.patch("/{kb_id}/sources/{source_id}", responses=error_responses(400, 404))
async def update_source(
    kb: KnowledgeBaseDep, source_id: str, body: SourceUpdate, session: SessionDep, rt: RuntimeDep
) -> SourceOut:
    source = await repository.get_source_or_404(session, kb=kb, source_id=source_id)
    return service.source_out(
        await service.update_source(session, source=source, body=body, settings=rt.settings)
    )


@router.delete("/{kb_id}/sources/{source_id}", status_code=204, responses=error_responses(404, 503))
async def delete_source(
    kb: KnowledgeBaseDep, source_id: str, session: SessionDep, rt: RuntimeDep
) -> Response:
    source = await repository.get_source_or_404(session, kb=kb, source_id=source_id)
    await service.delete_source(session, rt, kb=kb, source=source)
    await service.refresh_bm25(session, rt, kb=kb)
    return Response(status_code=204)


@router.post("/{kb_id}/sources/{source_id}/sync", status_code=202, responses=error_responses(404))
async def sync_source(
    kb: KnowledgeBaseDep, source_id: str, session: SessionDep, rt: RuntimeDep
) -> IngestionJobOut:
    source = await repository.get_source_or_404(session, kb=kb, source_id=source_id)
    return await _start_sync(session, rt, source)


async def _save_upload(upload: UploadFile, target: Path, max_bytes: int) -> None:
    tmp = target.with_name(f".{target.name}.part")
    size = 0
    try:
        with tmp.open("wb") as out:
            while data := await upload.read(UPLOAD_READ):
                size += len(data)
                if size > max_bytes:
                    raise AppError(
                        ErrorCode.PAYLOAD_TOO_LARGE, f"{upload.filename} is larger than {max_bytes} bytes."
                    )
                out.write(data)
        await asyncio.to_thread(os.replace, tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


@router.post("/{kb_id}/files", status_code=202, responses=error_responses(400, 404, 413, 415))
async def upload_files(
    kb: KnowledgeBaseDep,
    session: SessionDep,
    rt: RuntimeDep,
    files: Annotated[list[UploadFile], File(description="Markdown, RST, HTML, text, PDF, FAQ CSV/JSON")],
    sync: Annotated[bool, Query(description="Start a sync now (false: more uploads follow)")] = True,
    source_id: Annotated[
        str | None, Query(description="The upload source to add to (default: the knowledge base's own)")
    ] = None,
) -> UploadAccepted:
    names = []
    for upload in files:
        name = safe_upload_name(upload.filename or "")
        if format_for(name) is None:
            raise AppError(
                ErrorCode.UNSUPPORTED_MEDIA_TYPE,
                f"{upload.filename!r} is not a supported file type; use one of {', '.join(upload_extensions())}.",
            )
        names.append(name)
    if not names:
        raise AppError(ErrorCode.BAD_REQUEST, "No files were uploaded.")
    if source_id is not None:
        source = await repository.get_source_or_404(session, kb=kb, source_id=source_id)
        if source.type != "upload":
            raise AppError(
                ErrorCode.BAD_REQUEST, f"Source {source_id} is a {source.type} source, not an upload one."
            )
    else:
        source = await repository.default_upload_source(
            session, kb_id=kb.id
        ) or await service.create_upload_source(
            session, kb=kb, name="Uploaded files", config={}, settings=rt.settings, default=True
        )
    directory = Path(source.config["path"])
    for upload, name in zip(files, names, strict=True):
        target = directory / name
        await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
        await _save_upload(upload, target, rt.settings.max_upload_bytes)
    if not sync:
        return UploadAccepted(source_id=source.id, files=names, job=None)
    return UploadAccepted(source_id=source.id, files=names, job=await _start_sync(session, rt, source))


@router.get("/{kb_id}/sources/{source_id}/files", responses=error_responses(400, 404))
async def list_stored_files(kb: KnowledgeBaseDep, source_id: str, session: SessionDep) -> list[StoredFile]:
    """The files an upload source holds, with their SHA-256, so an uploader sends only what changed."""
    source = await repository.get_source_or_404(session, kb=kb, source_id=source_id)
    return await service.stored_files(source)


@router.post("/{kb_id}/sources/{source_id}/files/prune", responses=error_responses(400, 404))
async def prune_stored_files(
    kb: KnowledgeBaseDep, source_id: str, body: StoredFilesPrune, session: SessionDep
) -> StoredFilesPruned:
    """Keep only the files listed in ``keep``; the next sync of the source removes the others' documents."""
    source = await repository.get_source_or_404(session, kb=kb, source_id=source_id)
    return StoredFilesPruned(deleted=await service.prune_stored_files(source, body.keep))


@router.get("/{kb_id}/documents", responses=error_responses(404))
async def list_documents(
    kb: KnowledgeBaseDep,
    session: SessionDep,
    source_id: str | None = None,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: PageOffset = 0,
) -> Page[DocumentOut]:
    docs, total = await repository.list_documents(
        session, kb_id=kb.id, source_id=source_id, status=status, limit=limit, offset=offset
    )
    items = [
        DocumentOut(
            id=d.id,
            kb_id=d.kb_id,
            source_id=d.source_id,
            uri=d.uri,
            name=d.name,
            title=d.title,
            url=d.url,
            language=d.language,
            status=d.status,
            error=d.error,
            chunk_count=d.chunk_count,
            updated_at=d.updated_at,
        )
        for d in docs
    ]
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.delete("/{kb_id}/documents/{document_id}", status_code=204, responses=error_responses(404, 409, 503))
async def delete_document(
    kb: KnowledgeBaseDep, document_id: str, session: SessionDep, rt: RuntimeDep
) -> Response:
    """Remove a document from search and citations now (vectors, BM25, chunks; an uploaded file too)."""
    document = await repository.get_document_or_404(session, kb_id=kb.id, document_id=document_id)
    await service.delete_document(session, rt, kb=kb, document=document)
    await service.refresh_bm25(session, rt, kb=kb)
    return Response(status_code=204)


@router.post("/{kb_id}/documents/{document_id}/sync", status_code=202, responses=error_responses(404))
async def sync_document(
    kb: KnowledgeBaseDep, document_id: str, session: SessionDep, rt: RuntimeDep
) -> IngestionJobOut:
    """Fetch one document again from its source: updated if it changed, removed if the source lost it."""
    document = await repository.get_document_or_404(session, kb_id=kb.id, document_id=document_id)
    source = await repository.get_source_or_404(session, kb=kb, source_id=document.source_id)
    return await _start_sync(session, rt, source, document)


@router.get("/{kb_id}/documents/{document_id}/chunks", responses=error_responses(404))
async def list_chunks(
    kb: KnowledgeBaseDep,
    document_id: str,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: PageOffset = 0,
) -> Page[ChunkOut]:
    await repository.get_document_or_404(session, kb_id=kb.id, document_id=document_id)
    chunks, total = await repository.list_chunks(session, document_id=document_id, limit=limit, offset=offset)
    items = [
        ChunkOut(
            id=c.id,
            document_id=c.document_id,
            ordinal=c.ordinal,
            text=c.text,
            title=c.title,
            heading_path=list(c.heading_path),
            url=c.url,
            language=c.language,
        )
        for c in chunks
    ]
    return Page(items=items, total=total, limit=limit, offset=offset)


__all__ = ["TenantDep", "router"]
