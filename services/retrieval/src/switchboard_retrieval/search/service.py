"""Hybrid search over a tenant's knowledge bases: vector (Chroma) and BM25 rankings fused with RRF,
returned with component scores and a highlighted snippet; and, for a customer's turn,
the curated answer the query matches (checked with the query vectors the search computed)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard_retrieval.curated import repository as curated_repository
from switchboard_retrieval.curated import service as curated
from switchboard_retrieval.embeddings.encoders import EmbeddingUnavailable, Vectors, missing_setting
from switchboard_retrieval.index.bm25 import Bm25Index
from switchboard_retrieval.index.hybrid import FusedHit, fuse_rankings, with_best_of_parts
from switchboard_retrieval.index.spelling import Speller
from switchboard_retrieval.index.text import content_words, highlight, stem_word, tokenize
from switchboard_retrieval.index.vectors import collection_name
from switchboard_retrieval.ingestion.service import load_index_rows
from switchboard_retrieval.kbs import repository
from switchboard_retrieval.models import ChunkRow, KnowledgeBaseRow
from switchboard_retrieval.runtime import Runtime
from switchboard_shared.contracts.retrieval import QueryWords, SearchHit, SearchRequest, SearchResponse
from switchboard_shared.errors import AppError, ErrorCode
from switchboard_shared.language import text_language
from switchboard_shared.questions import question_parts

log = structlog.get_logger(__name__)
REPEAT_SLACK = 3


async def _knowledge_bases(
    session: AsyncSession, tenant_id: str, kb_ids: list[str] | None
) -> list[KnowledgeBaseRow]:
    kbs = await repository.tenant_kbs(session, tenant_id=tenant_id, kb_ids=kb_ids)
    if kb_ids is not None:
        missing = set(kb_ids) - {kb.id for kb in kbs}
        if missing:
            raise AppError(ErrorCode.NOT_FOUND, f"Knowledge base {sorted(missing)[0]} not found.")
    return kbs


async def _allowed_sources(
    session: AsyncSession, kb_ids: list[str], source_ids: list[str] | None, tags: list[str] | None
) -> set[str] | None:
    if not source_ids and not tags:
        return None
    sources = await repository.source_tags(session, kb_ids=kb_ids)
    allowed = {sid for sid, _ in sources}
    if source_ids:
        allowed &= set(source_ids)
    if tags:
        wanted = set(tags)
        allowed &= {sid for sid, source_tags in sources if wanted & set(source_tags or [])}
    return allowed


async def search(
    session: AsyncSession,
    rt: Runtime,
    *,
    tenant_id: str,
    request: SearchRequest,
    knowledge_bases: list[KnowledgeBaseRow] | None = None,
) -> SearchResponse:
    started = time.perf_counter()
    kbs = (
        knowledge_bases
        if knowledge_bases is not None
        else await _knowledge_bases(session, tenant_id, request.kb_ids)
    )
    language = request.language or text_language(request.query)
    # The query vector of each model, kept for the curated check (which needs no embedding of its own).
    query_vectors: dict[str, Vectors] = {}
    if not kbs:
        return await _with_curated(
            session, rt, tenant_id, request, language, query_vectors, SearchResponse(hits=[], took_ms=0.0)
        )
    allowed = await _allowed_sources(
        session, [kb.id for kb in kbs], request.filters.source_ids, request.filters.tags
    )
    if allowed is not None and not allowed:
        empty = SearchResponse(hits=[], took_ms=_ms(started))
        return await _with_curated(session, rt, tenant_id, request, language, query_vectors, empty)
    depth = max(request.top_k * 4, 30)
    settings = rt.settings
    indexes = (
        await _bm25_indexes(session, rt, kbs)
        if request.mode != "vector" or settings.spelling_correction
        else []
    )
    query = request.query
    if settings.spelling_correction:
        query = Speller([index.words for index in indexes], [index.stems for index in indexes]).correct(query)
    vector_query = query if settings.spelling_for_vectors else request.query
    whole = Ranking(request.mode, query, vector_query, indexes, depth, allowed)
    parts = _part_rankings(whole) if settings.search_question_parts else []
    rankings = await asyncio.gather(
        _ranked(rt, kbs, whole, query_vectors),
        # The parts' query vectors are their own: the curated check compares the whole message.
        *(_ranked(rt, kbs, part, {}) for part in parts),
    )
    fused = with_best_of_parts(rankings[0], rankings[1:], request.top_k)
    # A few more than asked for, so that dropping repeated passages still leaves enough.
    candidates = fused[: request.top_k + REPEAT_SLACK]
    chunks = await repository.chunks_by_ids(session, [hit.chunk_id for hit in candidates])
    candidates = _distinct_passages([hit for hit in candidates if hit.chunk_id in chunks], chunks)
    hits = [_hit(chunks[hit.chunk_id], hit, query) for hit in candidates[: request.top_k]]
    response = SearchResponse(
        hits=hits[: request.top_k],
        took_ms=_ms(started),
        corrected_query=query if query != request.query else None,
        query_words=_query_words(indexes, query, allowed),
    )
    return await _with_curated(session, rt, tenant_id, request, language, query_vectors, response)


async def _with_curated(
    session: AsyncSession,
    rt: Runtime,
    tenant_id: str,
    request: SearchRequest,
    language: str | None,
    query_vectors: dict[str, Vectors],
    response: SearchResponse,
) -> SearchResponse:
    """The response with its query language, and the curated answer the query matched when asked for one
    (a match asked for by a customer's turn counts as a hit of its entry)."""
    response.query_language = language
    if not request.curated:
        return response
    started = time.perf_counter()
    found = await curated.tenant_index(session, rt, tenant_id=tenant_id)
    if found is None:
        return response
    index, threshold = found
    missing = index.models - set(query_vectors)
    if missing:
        query_vectors = {**query_vectors, **await curated.embed_query(rt, missing, request.query)}
    match = curated.match(rt, index, threshold, query_vectors, language=language, kb_ids=request.kb_ids)
    if match is not None:
        await curated_repository.record_hit(
            session, tenant_id=tenant_id, answer_id=match.answer_id, at=datetime.now(UTC)
        )
        log.info("curated_answer_matched", answer_id=match.answer_id, score=match.score)
    response.curated = match
    response.took_ms = round(response.took_ms + _ms(started), 2)
    return response


@dataclass(frozen=True, slots=True)
class Ranking:
    """One ranking to compute: the mode, the text BM25 scores and the text embedded, over these indexes."""

    mode: str
    query: str
    vector_query: str
    indexes: list[Bm25Index]
    depth: int
    allowed: set[str] | None


def _part_rankings(whole: Ranking) -> list[Ranking]:
    """The rankings of each question a message asks, when it asks two ("how much is courier delivery and
    can I pay in bitcoin?"): searched as one query, the passages of one part can crowd out the other's."""
    parts = question_parts(whole.query, tokenize)
    if not parts:
        return []
    vector_parts = question_parts(whole.vector_query, tokenize)
    if len(vector_parts) != len(parts):
        vector_parts = parts
    return [
        replace(whole, query=part, vector_query=vector_part)
        for part, vector_part in zip(parts, vector_parts, strict=True)
    ]


async def _ranked(
    rt: Runtime, kbs: list[KnowledgeBaseRow], ranking: Ranking, query_vectors: dict[str, Vectors]
) -> list[FusedHit]:
    """The passages ranked for one query: by meaning, by keywords, or both fused (RRF)."""
    settings = rt.settings
    vector_hits: list[tuple[str, float]] = []
    bm25_hits: list[tuple[str, float]] = []
    indexes, query, depth, allowed = ranking.indexes, ranking.query, ranking.depth, ranking.allowed
    if ranking.mode in ("hybrid", "vector"):
        # The query embedding runs in a worker thread; BM25 scoring meanwhile (a sparse-matrix lookup).
        vector_task = asyncio.ensure_future(
            _vector_rankings(rt, kbs, ranking.vector_query, depth, allowed, query_vectors)
        )
        await asyncio.sleep(0)  # let the task hand the embedding to its worker thread first
        if ranking.mode == "hybrid":
            bm25_hits = _bm25_rankings(indexes, query, depth, allowed)
        vector_hits = await vector_task
    else:
        bm25_hits = _bm25_rankings(indexes, query, depth, allowed)
    if ranking.mode == "vector":
        return [FusedHit(cid, score, vector_score=score) for cid, score in vector_hits]
    if ranking.mode == "bm25":
        return [FusedHit(cid, score, bm25_score=score) for cid, score in bm25_hits]
    bm25_weight = settings.rrf_bm25_weight
    if settings.bm25_weight_by_coverage:
        bm25_weight *= _coverage(indexes, query)
    return fuse_rankings(
        vector_hits,
        bm25_hits,
        k=settings.rrf_k,
        vector_weight=settings.rrf_vector_weight,
        bm25_weight=bm25_weight,
    )


def _distinct_passages(candidates: list[FusedHit], chunks: dict[str, ChunkRow]) -> list[FusedHit]:
    """The best-ranked of passages with the same text (a page reachable under two URLs, a paragraph
    repeated in several documents): one copy is enough for the answer, the others would crowd out the rest."""
    seen: set[str] = set()
    distinct = []
    for hit in candidates:
        text = " ".join(chunks[hit.chunk_id].text.split())
        if text not in seen:
            seen.add(text)
            distinct.append(hit)
    return distinct


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def _hit(chunk: ChunkRow, fused: FusedHit, query: str) -> SearchHit:
    return SearchHit(
        chunk_id=chunk.id,
        document_id=chunk.document_id,
        kb_id=chunk.kb_id,
        source_id=chunk.source_id,
        title=chunk.title,
        heading_path=list(chunk.heading_path or []),
        url=chunk.url,
        text=chunk.text,
        snippet=highlight(chunk.text, query),
        score=round(fused.score, 6),
        vector_score=None if fused.vector_score is None else round(fused.vector_score, 6),
        bm25_score=None if fused.bm25_score is None else round(fused.bm25_score, 6),
        language=chunk.language,
    )


async def _vector_rankings(
    rt: Runtime,
    kbs: list[KnowledgeBaseRow],
    query: str,
    depth: int,
    allowed: set[str] | None,
    query_vectors: dict[str, Vectors],
) -> list[tuple[str, float]]:
    where: dict[str, Any] | None = None
    if allowed is not None:
        ids = sorted(allowed)
        where = {"source_id": ids[0]} if len(ids) == 1 else {"source_id": {"$in": ids}}
    by_model: dict[str, list[KnowledgeBaseRow]] = {}
    for kb in kbs:
        missing = missing_setting(kb.embedding_model, rt.settings)
        if missing is not None:
            # A knowledge base made before hosted models were checked at creation: it cannot be searched,
            # but it must not take the tenant's other knowledge bases down with it.
            log.warning(
                "kb_skipped_embedding_unconfigured", kb_id=kb.id, model=kb.embedding_model, missing=missing
            )
            continue
        by_model.setdefault(kb.embedding_model, []).append(kb)

    def run(model: str, group: list[KnowledgeBaseRow]) -> list[tuple[str, float]]:
        # One worker-thread hop per model: embed the query, then query each of its collections.
        embedder = rt.embeddings.get(model)
        vector = embedder.embed_query(query)
        query_vectors[model] = vector
        return [
            (hit.chunk_id, hit.similarity)
            for kb in group
            for hit in rt.vectors.query_sync(collection_name(kb.tenant_id, kb.id), vector, depth, where)
        ]

    outcomes = await asyncio.gather(
        *(asyncio.to_thread(run, m, g) for m, g in by_model.items()), return_exceptions=True
    )
    results: list[list[tuple[str, float]]] = []
    failures: list[EmbeddingUnavailable] = []
    for model, outcome in zip(by_model, outcomes, strict=True):
        if isinstance(outcome, EmbeddingUnavailable):
            log.warning("search_embedding_unavailable", model=model, error=str(outcome)[:300])
            failures.append(outcome)
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            results.append(outcome)
    if failures and not results:
        raise AppError(
            ErrorCode.SERVICE_UNAVAILABLE,
            f"An embedding model is unavailable: {failures[0]}",
            headers={"Retry-After": "5"},
        )
    merged = [hit for hits in results for hit in hits]
    merged.sort(key=lambda item: -item[1])
    return merged[:depth]


async def _bm25_indexes(session: AsyncSession, rt: Runtime, kbs: list[KnowledgeBaseRow]) -> list[Bm25Index]:
    indexes = []
    for kb in kbs:
        kb_id = kb.id

        async def rows(kb_id: str = kb_id) -> list[tuple[str, str, str]]:
            return await load_index_rows(session, kb_id)

        indexes.append(await rt.bm25.get(kb.id, kb.index_version, rows))
    return indexes


def _coverage(indexes: list[Bm25Index], query: str) -> float:
    """The share of the query's terms that some index knows: a Russian question over English pages shares
    almost no words with them, and its few BM25 matches (a product name, "docs") are noise next to the
    vector ranking."""
    terms = tokenize(query)
    if not terms:
        return 0.0
    return sum(1 for term in terms if any(term in index.stems for index in indexes)) / len(terms)


def _query_words(indexes: list[Bm25Index], query: str, allowed: set[str] | None) -> QueryWords | None:
    """How many chunks of the searched knowledge bases (of the ``allowed`` sources, when the search was
    filtered) hold each content word of the query (by stem); None when no keyword index was loaded (vector
    search without spelling correction)."""
    if not indexes:
        return None
    distinct = list(dict.fromkeys(content_words(query)))
    stems = [stem_word(word) for word in distinct]
    counted = [index.frequencies(stems, allowed) for index in indexes]
    return QueryWords(
        chunks=sum(chunks for chunks, _ in counted),
        frequencies={word: sum(row[i] for _, row in counted) for i, word in enumerate(distinct)},
    )


def _bm25_rankings(
    indexes: list[Bm25Index], query: str, depth: int, allowed: set[str] | None
) -> list[tuple[str, float]]:
    # Scoring is a sparse-matrix lookup (about 1 ms at 50k chunks): cheaper inline than a thread hop.
    merged = [hit for index in indexes for hit in index.search(query, depth, allowed)]
    merged.sort(key=lambda item: -item[1])
    return merged[:depth]
