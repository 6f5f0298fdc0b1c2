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


def with_best_of_parts(
    whole: Sequence[FusedHit], parts: Sequence[Sequence[FusedHit]], keep: int
) -> list[FusedHit]:
    """The whole message's ranking with each part's best passage among its first ``keep``: a part's best
    passage that the whole's first ``keep`` lacks takes the place of the whole's last one there (the whole's
    best stays first); the rest follow in the whole's order. Each hit keeps the scores it was ranked by."""
    taken = {hit.chunk_id for hit in whole[:keep]}
    extra: list[FusedHit] = []
    for part in parts:
        if part and part[0].chunk_id not in taken:
            taken.add(part[0].chunk_id)
            extra.append(part[0])
    if not extra:
        return list(whole)
    cut = max(keep - len(extra), 1)
    chosen = [*whole[:cut], *extra]
    extra_ids = {hit.chunk_id for hit in extra}
    return chosen + [hit for hit in whole[cut:] if hit.chunk_id not in extra_ids]
