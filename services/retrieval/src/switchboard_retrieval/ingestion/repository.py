"""SQL of one source sync: the documents and chunks it reads and writes, its job's progress, the knowledge
base's index version and the source's last-sync record. The sync commits; these only execute."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard_retrieval.models import ChunkRow, DocumentRow, IngestionJobRow, KnowledgeBaseRow, SourceRow

# Ids per DELETE ... IN (...): well under SQLite's limit on bound parameters.
DELETE_BATCH = 500


async def other_running_job(session: AsyncSession, *, source_id: str, job_id: str) -> str | None:
    """The id of a running job of the source other than ``job_id``, if any."""
    running: str | None = await session.scalar(
        select(IngestionJobRow.id).where(
            IngestionJobRow.source_id == source_id,
            IngestionJobRow.status == "running",
            IngestionJobRow.id != job_id,
        )
    )
    return running


async def known_documents(
    session: AsyncSession, *, source_id: str, document_id: str | None = None
) -> list[tuple[str, str, str, str]]:
    """(uri, id, content hash, status) of the source's documents, or of just ``document_id``."""
    query = select(DocumentRow.uri, DocumentRow.id, DocumentRow.content_hash, DocumentRow.status).where(
        DocumentRow.source_id == source_id
    )
    if document_id is not None:
        query = query.where(DocumentRow.id == document_id)
    rows = (await session.execute(query)).all()
    return [(uri, doc_id, content_hash, status) for uri, doc_id, content_hash, status in rows]


async def document_chunk_ids(
    session: AsyncSession, *, source_id: str, document_id: str | None = None
) -> list[tuple[str, str]]:
    """(document id, chunk id) of the source's chunks, or of just ``document_id``'s."""
    query = select(ChunkRow.document_id, ChunkRow.id).where(ChunkRow.source_id == source_id)
    if document_id is not None:
        query = query.where(ChunkRow.document_id == document_id)
    rows = (await session.execute(query)).all()
    return [(doc_id, chunk_id) for doc_id, chunk_id in rows]


async def mark_document_failed(session: AsyncSession, *, document_id: str, error: str) -> None:
    await session.execute(
        update(DocumentRow).where(DocumentRow.id == document_id).values(status="failed", error=error)
    )


async def update_document(session: AsyncSession, *, document_id: str, values: dict[str, Any]) -> None:
    await session.execute(update(DocumentRow).where(DocumentRow.id == document_id).values(**values))


async def delete_chunks(session: AsyncSession, *, chunk_ids: Collection[str]) -> None:
    await session.execute(delete(ChunkRow).where(ChunkRow.id.in_(chunk_ids)))


async def place_chunk(session: AsyncSession, *, chunk_id: str, ordinal: int, url: str | None) -> None:
    """A chunk kept as it was: its position in the document and its URL may have changed."""
    await session.execute(update(ChunkRow).where(ChunkRow.id == chunk_id).values(ordinal=ordinal, url=url))


async def delete_documents(session: AsyncSession, *, document_ids: list[str]) -> None:
    """The documents and their chunks."""
    for start in range(0, len(document_ids), DELETE_BATCH):
        part = document_ids[start : start + DELETE_BATCH]
        await session.execute(delete(ChunkRow).where(ChunkRow.document_id.in_(part)))
        await session.execute(delete(DocumentRow).where(DocumentRow.id.in_(part)))


async def bump_index_version(session: AsyncSession, *, kb_id: str) -> None:
    """Mark the knowledge base's BM25 index stale on every replica."""
    await session.execute(
        update(KnowledgeBaseRow)
        .where(KnowledgeBaseRow.id == kb_id)
        .values(index_version=KnowledgeBaseRow.index_version + 1)
    )


async def update_job(session: AsyncSession, *, job_id: str, values: dict[str, Any]) -> None:
    """Write the job's progress (and, at the end, its status)."""
    await session.execute(update(IngestionJobRow).where(IngestionJobRow.id == job_id).values(**values))


async def record_last_sync(
    session: AsyncSession, *, source_id: str, at: datetime, status: str, result: dict[str, Any]
) -> None:
    await session.execute(
        update(SourceRow)
        .where(SourceRow.id == source_id)
        .values(last_sync_at=at, last_sync_status=status, last_sync_result=result)
    )


async def index_chunks(session: AsyncSession, *, kb_id: str) -> list[tuple[str, str, str, list[str], str]]:
    """(id, source id, title, heading path, text) of every chunk of the knowledge base, by id."""
    result = await session.execute(
        select(ChunkRow.id, ChunkRow.source_id, ChunkRow.title, ChunkRow.heading_path, ChunkRow.text)
        .where(ChunkRow.kb_id == kb_id)
        .order_by(ChunkRow.id)
    )
    return [
        (chunk_id, source_id, title, heading_path, text)
        for chunk_id, source_id, title, heading_path, text in result.all()
    ]
