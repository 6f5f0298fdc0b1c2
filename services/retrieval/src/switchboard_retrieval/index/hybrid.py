"""Weighted reciprocal rank fusion of the vector and BM25 rankings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class FusedHit:
    chunk_id: str
    score: float
    vector_score: float | None = None
    bm25_score: float | None = None


def fuse_rankings(
    vector: Sequence[tuple[str, float]],
    bm25: Sequence[tuple[str, float]],
    *,
    k: int = 60,
    vector_weight: float = 1.0,
    bm25_weight: float = 1.0,
) -> list[FusedHit]:
    """Weighted RRF: each list adds ``weight / (k + rank)``; lists are (chunk id, score) sorted best first."""
    fused: dict[str, FusedHit] = {}
    for rank, (chunk_id, score) in enumerate(vector, start=1):
        hit = fused.setdefault(chunk_id, FusedHit(chunk_id, 0.0))
        hit.score += vector_weight / (k + rank)
        hit.vector_score = score
    for rank, (chunk_id, score) in enumerate(bm25, start=1):
        hit = fused.setdefault(chunk_id, FusedHit(chunk_id, 0.0))
        hit.score += bm25_weight / (k + rank)
        hit.bm25_score = score
    return sorted(fused.values(), key=lambda h: -h.score)
