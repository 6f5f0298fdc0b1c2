"""SQL of knowledge bases, sources, documents, chunks and jobs; every query is scoped by tenant."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard_retrieval.models import ChunkRow, DocumentRow, IngestionJobRow, KnowledgeBaseRow, SourceRow
from switchboard_shared.errors import AppError, ErrorCode


async def get_kb_or_404(session: AsyncSession, *, tenant_id: str, kb_id: str) -> KnowledgeBaseRow:
    kb = await session.get(KnowledgeBaseRow, kb_id)
    if kb is None or kb.tenant_id != tenant_id:
        raise AppError(ErrorCode.NOT_FOUND, f"Knowledge base {kb_id} not found.")
    return kb


async def get_kb_by_name(session: AsyncSession, *, tenant_id: str, name: str) -> KnowledgeBaseRow | None:
    result = await session.execute(
        select(KnowledgeBaseRow).where(KnowledgeBaseRow.tenant_id == tenant_id, KnowledgeBaseRow.name == name)
    )
    return result.scalar_one_or_none()


async def list_kbs(
    session: AsyncSession, *, tenant_id: str, limit: int, offset: int, name: str | None = None
) -> tuple[Sequence[KnowledgeBaseRow], int]:
    query = select(KnowledgeBaseRow).where(KnowledgeBaseRow.tenant_id == tenant_id)
    if name is not None:
        query = query.where(KnowledgeBaseRow.name == name)
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    rows = (
        await session.execute(
            query.order_by(KnowledgeBaseRow.created_at, KnowledgeBaseRow.id).limit(limit).offset(offset)
        )
    ).scalars()
    return list(rows), total


async def tenant_kbs(
    session: AsyncSession, *, tenant_id: str, kb_ids: list[str] | None
) -> list[KnowledgeBaseRow]:
    """The tenant's knowledge bases, or those of ``kb_ids`` among them (unknown ids are left out)."""
    query = select(KnowledgeBaseRow).where(KnowledgeBaseRow.tenant_id == tenant_id)
    if kb_ids is not None:
        query = query.where(KnowledgeBaseRow.id.in_(kb_ids))
    return list((await session.execute(query)).scalars())


async def kb_counts(session: AsyncSession, kb_ids: Sequence[str]) -> dict[str, tuple[int, int, int]]:
    """(documents, chunks, sources) per knowledge base."""
    if not kb_ids:
        return {}
    docs: dict[str, int] = dict(
        (
            await session.execute(
                select(DocumentRow.kb_id, func.count())
                .where(DocumentRow.kb_id.in_(kb_ids))
                .group_by(DocumentRow.kb_id)
            )
        ).all()
    )
    chunks: dict[str, int] = dict(
        (
            await session.execute(
                select(ChunkRow.kb_id, func.count())
                .where(ChunkRow.kb_id.in_(kb_ids))
                .group_by(ChunkRow.kb_id)
            )
        ).all()
    )
    sources: dict[str, int] = dict(
        (
            await session.execute(
                select(SourceRow.kb_id, func.count())
                .where(SourceRow.kb_id.in_(kb_ids))
                .group_by(SourceRow.kb_id)
            )
        ).all()
    )
    return {kb_id: (docs.get(kb_id, 0), chunks.get(kb_id, 0), sources.get(kb_id, 0)) for kb_id in kb_ids}


async def delete_kb_rows(session: AsyncSession, *, kb_id: str) -> None:
    """The knowledge base's jobs, chunks, documents and sources (not its own row). Explicit deletes rather than
    relying on ON DELETE CASCADE alone: SQLite only cascades with the pragma."""
    await session.execute(delete(IngestionJobRow).where(IngestionJobRow.kb_id == kb_id))
    await session.execute(delete(ChunkRow).where(ChunkRow.kb_id == kb_id))
    await session.execute(delete(DocumentRow).where(DocumentRow.kb_id == kb_id))
    await session.execute(delete(SourceRow).where(SourceRow.kb_id == kb_id))


async def get_source_or_404(session: AsyncSession, *, kb: KnowledgeBaseRow, source_id: str) -> SourceRow:
    source = await session.get(SourceRow, source_id)
    if source is None or source.kb_id != kb.id:
        raise AppError(ErrorCode.NOT_FOUND, f"Source {source_id} not found.")
    return source


async def list_sources(session: AsyncSession, *, kb_id: str) -> Sequence[SourceRow]:
    result = await session.execute(
        select(SourceRow).where(SourceRow.kb_id == kb_id).order_by(SourceRow.created_at)
    )
    return list(result.scalars())


async def source_tags(session: AsyncSession, *, kb_ids: list[str]) -> list[tuple[str, list[str]]]:
    """(id, tags) of every source of the knowledge bases."""
    rows = (
        await session.execute(select(SourceRow.id, SourceRow.tags).where(SourceRow.kb_id.in_(kb_ids)))
    ).all()
    return [(source_id, tags) for source_id, tags in rows]


async def delete_source_rows(session: AsyncSession, *, source_id: str) -> None:
    """The source's jobs, chunks and documents (not its own row)."""
    await session.execute(delete(IngestionJobRow).where(IngestionJobRow.source_id == source_id))
    await session.execute(delete(ChunkRow).where(ChunkRow.source_id == source_id))
    await session.execute(delete(DocumentRow).where(DocumentRow.source_id == source_id))


async def default_upload_source(session: AsyncSession, *, kb_id: str) -> SourceRow | None:
    """The upload source that takes uploads naming no source (sources made before there were several
    upload sources count as default)."""
    result = await session.execute(
        select(SourceRow)
        .where(SourceRow.kb_id == kb_id, SourceRow.type == "upload")
        .order_by(SourceRow.created_at)
    )
    return next((s for s in result.scalars() if s.config.get("default", True)), None)


async def open_job_for_source(
    session: AsyncSession, *, source_id: str, statuses: tuple[str, ...] = ("queued", "running")
) -> IngestionJobRow | None:
    result = await session.execute(
        select(IngestionJobRow)
        .where(IngestionJobRow.source_id == source_id, IngestionJobRow.status.in_(statuses))
        .order_by(IngestionJobRow.created_at.desc())
    )
    return result.scalars().first()


async def queued_job_covering(
    session: AsyncSession, *, source_id: str, document_id: str | None
) -> IngestionJobRow | None:
    """A queued job of the source that will sync the whole source, or (with ``document_id``) that document."""
    scope: ColumnElement[bool] = IngestionJobRow.document_id.is_(None)
    if document_id is not None:
        scope = or_(scope, IngestionJobRow.document_id == document_id)
    result = await session.execute(
        select(IngestionJobRow)
        .where(IngestionJobRow.source_id == source_id, IngestionJobRow.status == "queued", scope)
        .order_by(IngestionJobRow.created_at.desc())
    )
    return result.scalars().first()


async def get_job_or_404(session: AsyncSession, *, tenant_id: str, job_id: str) -> IngestionJobRow:
    job = await session.get(IngestionJobRow, job_id)
    if job is None or job.tenant_id != tenant_id:
        raise AppError(ErrorCode.NOT_FOUND, f"Job {job_id} not found.")
    return job


async def list_jobs(
    session: AsyncSession, *, tenant_id: str, kb_id: str | None, limit: int, offset: int
) -> tuple[Sequence[IngestionJobRow], int]:
    query = select(IngestionJobRow).where(IngestionJobRow.tenant_id == tenant_id)
    if kb_id:
        query = query.where(IngestionJobRow.kb_id == kb_id)
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    rows = (
        await session.execute(query.order_by(IngestionJobRow.created_at.desc()).limit(limit).offset(offset))
    ).scalars()
    return list(rows), total


async def list_documents(
    session: AsyncSession, *, kb_id: str, source_id: str | None, status: str | None, limit: int, offset: int
) -> tuple[Sequence[DocumentRow], int]:
    query = select(DocumentRow).where(DocumentRow.kb_id == kb_id)
    if source_id:
        query = query.where(DocumentRow.source_id == source_id)
    if status:
        query = query.where(DocumentRow.status == status)
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    rows = (await session.execute(query.order_by(DocumentRow.uri).limit(limit).offset(offset))).scalars()
    return list(rows), total


async def get_document_or_404(session: AsyncSession, *, kb_id: str, document_id: str) -> DocumentRow:
    document = await session.get(DocumentRow, document_id)
    if document is None or document.kb_id != kb_id:
        raise AppError(ErrorCode.NOT_FOUND, f"Document {document_id} not found.")
    return document


async def delete_document_rows(session: AsyncSession, *, document_id: str) -> None:
    """The document's chunks and its row."""
    await session.execute(delete(ChunkRow).where(ChunkRow.document_id == document_id))
    await session.execute(delete(DocumentRow).where(DocumentRow.id == document_id))


async def list_chunks(
    session: AsyncSession, *, document_id: str, limit: int, offset: int
) -> tuple[Sequence[ChunkRow], int]:
    query = select(ChunkRow).where(ChunkRow.document_id == document_id)
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    rows = (await session.execute(query.order_by(ChunkRow.ordinal).limit(limit).offset(offset))).scalars()
    return list(rows), total


async def chunks_by_ids(session: AsyncSession, ids: Sequence[str]) -> dict[str, ChunkRow]:
    if not ids:
        return {}
    result = await session.execute(select(ChunkRow).where(ChunkRow.id.in_(list(ids))))
    return {chunk.id: chunk for chunk in result.scalars()}


async def source_chunk_texts(session: AsyncSession, *, source_id: str) -> list[tuple[str, str]]:
    """(id, text) of every chunk of the source."""
    result = await session.execute(select(ChunkRow.id, ChunkRow.text).where(ChunkRow.source_id == source_id))
    return [(chunk_id, text) for chunk_id, text in result.all()]


async def document_chunk_texts(session: AsyncSession, *, document_id: str) -> list[tuple[str, str]]:
    """(id, text) of every chunk of the document."""
    result = await session.execute(
        select(ChunkRow.id, ChunkRow.text).where(ChunkRow.document_id == document_id)
    )
    return [(chunk_id, text) for chunk_id, text in result.all()]
