"""What the turn asks retrieval: the passages for a query, and (for the extractive answerer) how close in
meaning sentences are to the question. Retrieval being down is an answer, not an error."""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from switchboard_chat.providers.base import Passage, Similarity
from switchboard_chat.runtime import Runtime
from switchboard_shared.contracts.retrieval import (
    CuratedMatch,
    QueryWords,
    SearchRequest,
    SimilarityRequest,
)
from switchboard_shared.errors import AppError

log = structlog.get_logger(__name__)
SIMILARITY_BATCH = 256  # texts per similarity request (the contract's limit)


@dataclass(slots=True)
class Found:
    """What a search found: the numbered passages, whether the knowledge base was unavailable, the tenant's
    curated answer the query matched (retrieval checks them in the same search) and the query as retrieval
    searched it when its spelling correction changed a word (else None), and how common the query's words are
    in the knowledge base."""

    passages: list[Passage]
    kb_unavailable: bool = False
    curated: CuratedMatch | None = None
    corrected_query: str | None = None
    query_words: QueryWords | None = None


async def search(
    runtime: Runtime,
    *,
    tenant_id: str,
    conversation_id: str,
    query: str,
    kb_ids: list[str] | None,
    language: str,
) -> Found:
    """What the knowledge base holds for ``query`` (retrieval being down is an answer: ``kb_unavailable``)."""
    request = SearchRequest(
        query=query[:4000],
        kb_ids=kb_ids,
        top_k=runtime.settings.retrieval_top_k,
        language=language,
        curated=True,
    )
    try:
        response = await runtime.retrieval().search(tenant_id=tenant_id, request=request)
    except (AppError, ValueError) as exc:
        log.warning("retrieval_unavailable", conversation_id=conversation_id, error=str(exc)[:300])
        return Found([], kb_unavailable=True)
    passages = [Passage(index=i, hit=hit) for i, hit in enumerate(response.hits, start=1)]
    return Found(
        passages,
        curated=response.curated,
        corrected_query=response.corrected_query,
        query_words=response.query_words,
    )


def similarity(runtime: Runtime, tenant_id: str) -> Similarity:
    """The extractive answerer's view of meaning: retrieval compares its sentences with the question in the
    knowledge base's embedding space (None when retrieval cannot, so shared words decide alone)."""
    client = runtime.retrieval()

    async def compare(kb_id: str, queries: list[str], texts: list[str]) -> list[list[float]] | None:
        rows: list[list[float]] = [[] for _ in queries]
        try:
            for start in range(0, len(texts), SIMILARITY_BATCH):
                batch = texts[start : start + SIMILARITY_BATCH]
                response = await client.similarity(
                    tenant_id=tenant_id, request=SimilarityRequest(kb_id=kb_id, queries=queries, texts=batch)
                )
                if len(response.scores) != len(queries) or any(len(r) != len(batch) for r in response.scores):
                    raise ValueError("similarity answered a matrix of the wrong shape")
                for row, scores in zip(rows, response.scores, strict=True):
                    row.extend(scores)
        except (AppError, ValueError) as exc:
            log.warning("similarity_unavailable", kb_id=kb_id, error=str(exc)[:300])
            return None
        return rows

    return compare
