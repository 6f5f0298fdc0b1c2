"""Similarity of texts to queries in a knowledge base's own embedding space, for chat's extractive answerer.

Chat has no model; the sentences it may answer with are compared with the question here, with the very
model that embedded the knowledge base, so a Russian question finds the English sentence that answers it.
The same sentences come back turn after turn (the passages of popular questions), so their vectors are kept
in a bounded in-process LRU (float16, about 1 KB each for a 512-d model).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict

import numpy as np
import numpy.typing as npt
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard_retrieval.embeddings.encoders import Embedder, EmbeddingUnavailable
from switchboard_retrieval.kbs import repository
from switchboard_retrieval.runtime import Runtime
from switchboard_shared.contracts.retrieval import SimilarityRequest, SimilarityResponse
from switchboard_shared.errors import AppError, ErrorCode


class VectorCache:
    """Text vectors per model, least recently used dropped first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[tuple[str, str], npt.NDArray[np.float16]] = OrderedDict()
        self._lock = threading.Lock()

    def embed(self, embedder: Embedder, texts: list[str]) -> npt.NDArray[np.float32]:
        found: dict[int, npt.NDArray[np.float16]] = {}
        with self._lock:
            for i, text in enumerate(texts):
                vector = self._items.get((embedder.name, text))
                if vector is not None:
                    self._items.move_to_end((embedder.name, text))
                    found[i] = vector
        missing = [i for i in range(len(texts)) if i not in found]
        if missing:
            fresh = embedder.embed_documents([texts[i] for i in missing])
            with self._lock:
                for i, vector in zip(missing, fresh, strict=True):
                    found[i] = vector.astype(np.float16)
                    if self.capacity:
                        self._items[(embedder.name, texts[i])] = found[i]
                while len(self._items) > self.capacity:
                    self._items.popitem(last=False)
        return np.vstack([found[i] for i in range(len(texts))]).astype(np.float32)


async def similarity(
    session: AsyncSession, rt: Runtime, cache: VectorCache, *, tenant_id: str, request: SimilarityRequest
) -> SimilarityResponse:
    started = time.perf_counter()
    kb = await repository.get_kb_or_404(session, tenant_id=tenant_id, kb_id=request.kb_id)

    def run() -> npt.NDArray[np.float32]:
        embedder = rt.embeddings.get(kb.embedding_model)
        queries = np.vstack([embedder.embed_query(query) for query in request.queries])
        texts = cache.embed(embedder, request.texts)
        # Both sides are normalised: the dot product is the cosine.
        scores: npt.NDArray[np.float32] = queries @ texts.T
        return scores

    try:
        scores = await asyncio.to_thread(run)
    except EmbeddingUnavailable as exc:
        raise AppError(
            ErrorCode.SERVICE_UNAVAILABLE,
            f"The knowledge base's embedding model is unavailable: {exc}",
            headers={"Retry-After": "5"},
        ) from exc
    return SimilarityResponse(
        model=kb.embedding_model,
        scores=[[round(float(value), 4) for value in row] for row in scores],
        took_ms=round((time.perf_counter() - started) * 1000, 2),
    )
