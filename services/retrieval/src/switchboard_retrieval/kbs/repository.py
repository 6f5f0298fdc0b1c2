"""SQL of knowledge bases, sources, documents, chunks and jobs; every query is scoped by tenant."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard_retrieval.models import Chunk, Document, IngestionJob, KnowledgeBase, Source
from switchboard_shared.errors import AppError, ErrorCode


async def get_kb_or_404(session: AsyncSession, *, tenant_id: str, kb_id: str) -> KnowledgeBase:
    kb = await session.get(KnowledgeBase, kb_id)
    if kb is None or kb.tenant_id != tenant_id:
        raise AppError(ErrorCode.NOT_FOUND, f"Knowledge base {kb_id} not found.")
    return kb


async def get_kb_by_name(session: AsyncSession, *, tenant_id: str, name: str) -> KnowledgeBase | None:
    result = await session.execute(
        select(KnowledgeBase).where(KnowledgeBase.tenant_id == tenant_id, KnowledgeBase.name == name)
    )
    return result.scalar_one_or_none()


async def list_kbs(
    session: AsyncSession, *, tenant_id: str, limit: int, offset: int, name: str | None = None
) -> tuple[Sequence[KnowledgeBase], int]:
    query = select(KnowledgeBase).where(KnowledgeBase.tenant_id == tenant_id)
    if name is not None:
        query = query.where(KnowledgeBase.name == name)
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    rows = (
        await session.execute(
            query.order_by(KnowledgeBase.created_at, KnowledgeBase.id).limit(limit).offset(offset)
        )
    ).scalars()
    return list(rows), total


async def tenant_kbs(
    session: AsyncSession, *, tenant_id: str, kb_ids: list[str] | None
) -> list[KnowledgeBase]:
    """The tenant's knowledge bases, or those of ``kb_ids`` among them (unknown ids are left out)."""
    query = select(KnowledgeBase).where(KnowledgeBase.tenant_id == tenant_id)
    if kb_ids is not None:
        query = query.where(KnowledgeBase.id.in_(kb_ids))
    return list((await session.execute(query)).scalars())


async def kb_counts(session: AsyncSession, kb_ids: Sequence[str]) -> dict[str, tuple[int, int, int]]:
    """(documents, chunks, sources) per knowledge base."""
    if not kb_ids:
        return {}
    docs: dict[str, int] = dict(
        (
            await session.execute(
                select(Document.kb_id, func.count())
                .where(Document.kb_id.in_(kb_ids))
                .group_by(Document.kb_id)
            )
        ).all()
    )
    chunks: dict[str, int] = dict(
        (
            await session.execute(
                select(Chunk.kb_id, func.count()).where(Chunk.kb_id.in_(kb_ids)).group_by(Chunk.kb_id)
            )
        ).all()
    )
    sources: dict[str, int] = dict(
        (
            await session.execute(
                select(Source.kb_id, func.count()).where(Source.kb_id.in_(kb_ids)).group_by(Source.kb_id)
            )
        ).all()
    )
    return {kb_id: (docs.get(kb_id, 0), chunks.get(kb_id, 0), sources.get(kb_id, 0)) for kb_id in kb_ids}


async def delete_kb_rows(session: AsyncSession, *, kb_id: str) -> None:
    """The knowledge base's jobs, chunks, documents and sources (not its own row). Explicit deletes rather than
    relying on ON DELETE CASCADE alone: SQLite only cascades with the pragma."""
    await session.execute(delete(IngestionJob).where(IngestionJob.kb_id == kb_id))
    await session.execute(delete(Chunk).where(Chunk.kb_id == kb_id))
    await session.execute(delete(Document).where(Document.kb_id == kb_id))
    await session.execute(delete(Source).where(Source.kb_id == kb_id))


async def get_source_or_404(session: AsyncSession, *, kb: KnowledgeBase, source_id: str) -> Source:
    source = await session.get(Source, source_id)
    if source is None or source.kb_id != kb.id:
        raise AppError(ErrorCode.NOT_FOUND, f"Source {source_id} not found.")
    return source


async def list_sources(session: AsyncSession, *, kb_id: str) -> Sequence[Source]:
    result = await session.execute(select(Source).where(Source.kb_id == kb_id).order_by(Source.created_at))
    return list(result.scalars())


async def source_tags(session: AsyncSession, *, kb_ids: list[str]) -> list[tuple[str, list[str]]]:
    """(id, tags) of every source of the knowledge bases."""
    rows = (await session.execute(select(Source.id, Source.tags).where(Source.kb_id.in_(kb_ids)))).all()
    return [(source_id, tags) for source_id, tags in rows]


async def delete_source_rows(session: AsyncSession, *, source_id: str) -> None:
    """The source's jobs, chunks and documents (not its own row)."""
    await session.execute(delete(IngestionJob).where(IngestionJob.source_id == source_id))
    await session.execute(delete(Chunk).where(Chunk.source_id == source_id))
    await session.execute(delete(Document).where(Document.source_id == source_id))


async def default_upload_source(session: AsyncSession, *, kb_id: str) -> Source | None:
    """The upload source that takes uploads naming no source (sources made before there were several
    upload sources count as default)."""
    result = await session.execute(
        select(Source).where(Source.kb_id == kb_id, Source.type == "upload").order_by(Source.created_at)
    )
    return next((s for s in result.scalars() if s.config.get("default", True)), None)


async def open_job_for_source(
    session: AsyncSession, *, source_id: str, statuses: tuple[str, ...] = ("queued", "running")
) -> IngestionJob | None:
    result = await session.execute(
        select(IngestionJob)
        .where(IngestionJob.source_id == source_id, IngestionJob.status.in_(statuses))
        .order_by(IngestionJob.created_at.desc())
    )
    return result.scalars().first()


async def queued_job_covering(
    session: AsyncSession, *, source_id: str, document_id: str | None
) -> IngestionJob | None:
    """A queued job of the source that will sync the whole source, or (with ``document_id``) that document."""
    scope: ColumnElement[bool] = IngestionJob.document_id.is_(None)
    if document_id is not None:
        scope = or_(scope, IngestionJob.document_id == document_id)
    result = await session.execute(
        select(IngestionJob)
        .where(IngestionJob.source_id == source_id, IngestionJob.status == "queued", scope)
        .order_by(IngestionJob.created_at.desc())
    )
    return result.scalars().first()


async def get_job_or_404(session: AsyncSession, *, tenant_id: str, job_id: str) -> IngestionJob:
    job = await session.get(IngestionJob, job_id)
    if job is None or job.tenant_id != tenant_id:
        raise AppError(ErrorCode.NOT_FOUND, f"Job {job_id} not found.")
    return job


async def list_jobs(
    session: AsyncSession, *, tenant_id: str, kb_id: str | None, limit: int, offset: int
) -> tuple[Sequence[IngestionJob], int]:
    query = select(IngestionJob).where(IngestionJob.tenant_id == tenant_id)
    if kb_id:
        query = query.where(IngestionJob.kb_id == kb_id)
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    rows = (
        await session.execute(query.order_by(IngestionJob.created_at.desc()).limit(limit).offset(offset))
    ).scalars()
    return list(rows), total


async def list_documents(
    session: AsyncSession, *, kb_id: str, source_id: str | None, status: str | None, limit: int, offset: int
) -> tuple[Sequence[Document], int]:
    query = select(Document).where(Document.kb_id == kb_id)
    if source_id:
        query = query.where(Document.source_id == source_id)
    if status:
        query = query.where(Document.status == status)
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    rows = (await session.execute(query.order_by(Document.uri).limit(limit).offset(offset))).scalars()
    return list(rows), total


async def get_document_or_404(session: AsyncSession, *, kb_id: str, document_id: str) -> Document:
    document = await session.get(Document, document_id)
    if document is None or document.kb_id != kb_id:
        raise AppError(ErrorCode.NOT_FOUND, f"Document {document_id} not found.")
    return document


async def delete_document_rows(session: AsyncSession, *, document_id: str) -> None:
    """The document's chunks and its row."""
    await session.execute(delete(Chunk).where(Chunk.document_id == document_id))
    await session.execute(delete(Document).where(Document.id == document_id))


async def list_chunks(
    session: AsyncSession, *, document_id: str, limit: int, offset: int
) -> tuple[Sequence[Chunk], int]:
    query = select(Chunk).where(Chunk.document_id == document_id)
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    rows = (await session.execute(query.order_by(Chunk.ordinal).limit(limit).offset(offset))).scalars()
    return list(rows), total


async def chunks_by_ids(session: AsyncSession, ids: Sequence[str]) -> dict[str, Chunk]:
    if not ids:
        return {}
    result = await session.execute(select(Chunk).where(Chunk.id.in_(list(ids))))
    return {chunk.id: chunk for chunk in result.scalars()}


async def source_chunk_texts(session: AsyncSession, *, source_id: str) -> list[tuple[str, str]]:
    """(id, text) of every chunk of the source."""
    result = await session.execute(select(Chunk.id, Chunk.text).where(Chunk.source_id == source_id))
    return [(chunk_id, text) for chunk_id, text in result.all()]


async def document_chunk_texts(session: AsyncSession, *, document_id: str) -> list[tuple[str, str]]:
    """(id, text) of every chunk of the document."""
    result = await session.execute(select(Chunk.id, Chunk.text).where(Chunk.document_id == document_id))
    return [(chunk_id, text) for chunk_id, text in result.all()]
