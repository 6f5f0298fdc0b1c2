"""One indexed copy of each passage text in a knowledge base.

The same paragraph often recurs across a help centre (a note repeated on several pages, a page reachable
under two paths). Every copy keeps its chunk row (its document's citations and counts stay whole), but only
one is embedded and BM25-indexed: identical vectors crowd an HNSW neighbourhood and push other passages out
of the approximate top k, and identical BM25 rows only repeat a hit. The indexed copy is a pure function of
the chunk rows, the smallest chunk id among the copies, so every replica and every rebuild agrees on it, and
removing the document that held it hands the text to the next copy (``reconcile_copies``).
"""

from __future__ import annotations

import asyncio
import hashlib
import unicodedata
from collections.abc import Callable, Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard_retrieval.embeddings.encoders import EmbeddingUnavailable, Vectors
from switchboard_retrieval.index.vectors import VectorStore, collection_name
from switchboard_retrieval.ingestion.chunking import compose_indexed_text
from switchboard_retrieval.models import ChunkRow, KnowledgeBaseRow
from switchboard_retrieval.runtime import Runtime
from switchboard_shared.errors import AppError, ErrorCode


def passage_key(text: str) -> str:
    """The identity of a passage text: composed (NFC), whitespace collapsed."""
    normal = " ".join(unicodedata.normalize("NFC", text).split())
    return hashlib.sha1(normal.encode("utf-8")).hexdigest()


def kept_copies(rows: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Passage key → id of its indexed copy (the smallest chunk id), from (chunk id, text) rows."""
    kept: dict[str, str] = {}
    for chunk_id, text in rows:
        key = passage_key(text)
        current = kept.get(key)
        if current is None or chunk_id < current:
            kept[key] = chunk_id
    return kept


async def chunk_keys(session: AsyncSession, kb_id: str) -> dict[str, str]:
    """Chunk id → passage key of every chunk of the knowledge base."""
    result = await session.execute(select(ChunkRow.id, ChunkRow.text).where(ChunkRow.kb_id == kb_id))
    return {chunk_id: passage_key(text) for chunk_id, text in result.all()}


async def reconcile_copies(
    session: AsyncSession,
    vectors: VectorStore,
    embed: Callable[[list[str]], Vectors],
    *,
    kb_id: str,
    collection: str,
    keys: set[str],
) -> int:
    """Make the vector index hold exactly the indexed copy of each passage in ``keys``, as the chunk rows
    the session sees now decide it: a copy that became the indexed one (its predecessor's document was
    deleted or changed) is embedded, the other copies' vectors are removed. Returns how many were embedded."""
    if not keys:
        return 0
    copies: dict[str, list[str]] = {}
    for chunk_id, key in (await chunk_keys(session, kb_id)).items():
        if key in keys:
            copies.setdefault(key, []).append(chunk_id)
    kept = {min(ids) for ids in copies.values()}
    others = [cid for ids in copies.values() for cid in ids if cid not in kept]
    present = await vectors.present(collection, sorted(kept.union(others)))
    missing = sorted(kept - present)
    if missing:
        result = await session.execute(
            select(
                ChunkRow.id,
                ChunkRow.source_id,
                ChunkRow.document_id,
                ChunkRow.title,
                ChunkRow.heading_path,
                ChunkRow.text,
            )
            .where(ChunkRow.id.in_(missing))
            .order_by(ChunkRow.id)
        )
        rows = result.all()
        texts = [compose_indexed_text(title, list(path or []), text) for _, _, _, title, path, text in rows]
        embedded = await asyncio.to_thread(embed, texts)
        await vectors.upsert(
            collection,
            [row[0] for row in rows],
            embedded,
            [{"source_id": source_id, "document_id": doc_id} for _, source_id, doc_id, _, _, _ in rows],
        )
    await vectors.delete(collection, [cid for cid in others if cid in present])
    return len(missing)


async def hand_over_copies(
    session: AsyncSession, rt: Runtime, *, kb: KnowledgeBaseRow, keys: set[str]
) -> None:
    """After chunks of the knowledge base were deleted (flushed, not yet committed): each of their texts
    that another copy still holds is indexed under that copy. Refused while the embedding model is down,
    before any vector is touched, so the caller's rollback leaves everything as it was."""

    def embed(texts: list[str]) -> Vectors:
        return rt.embeddings.get(kb.embedding_model).embed_documents(texts)

    try:
        await reconcile_copies(
            session,
            rt.vectors,
            embed,
            kb_id=kb.id,
            collection=collection_name(kb.tenant_id, kb.id),
            keys=keys,
        )
    except EmbeddingUnavailable as exc:
        raise AppError(
            ErrorCode.SERVICE_UNAVAILABLE,
            f"An embedding model is unavailable: {exc}",
            headers={"Retry-After": "5"},
        ) from exc
