"""Properties of (weighted) reciprocal rank fusion: every candidate once, RRF scores exactly, order by
score, and a candidate ranked better in both lists never falls behind; and of interleaving the rankings of
a message's questions: nothing lost, each part's best passage among the first, the whole's best first."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard_retrieval.index.hybrid import FusedHit, fuse_rankings, with_best_of_parts

PROPERTY = settings(max_examples=300, deadline=None)

ids = st.text(alphabet="0123456789abcdef", min_size=1, max_size=6)


@st.composite
def rankings(draw: st.DrawFn) -> list[tuple[str, float]]:
    """A ranking as a search returns it: distinct chunk ids, scores not increasing."""
    chunk_ids = draw(st.lists(ids, unique=True, max_size=40))
    scores = sorted(
        draw(
            st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=len(chunk_ids), max_size=len(chunk_ids))
        ),
        reverse=True,
    )
    return list(zip(chunk_ids, scores, strict=True))


def rrf(chunk_id: str, lists: list[tuple[list[tuple[str, float]], float]], k: int) -> float:
    return sum(
        weight / (k + rank)
        for ranking, weight in lists
        for rank, (cid, _) in enumerate(ranking, 1)
        if cid == chunk_id
    )


weights = st.floats(0.0, 2.0, allow_nan=False)


@PROPERTY
@given(vector=rankings(), bm25=rankings(), k=st.integers(1, 200), vw=weights, bw=weights)
def test_every_candidate_once_with_its_rrf_score_best_first(
    vector: list[tuple[str, float]], bm25: list[tuple[str, float]], k: int, vw: float, bw: float
) -> None:
    fused = fuse_rankings(vector, bm25, k=k, vector_weight=vw, bm25_weight=bw)
    assert sorted(h.chunk_id for h in fused) == sorted({cid for cid, _ in vector} | {cid for cid, _ in bm25})
    for hit in fused:
        assert abs(hit.score - rrf(hit.chunk_id, [(vector, vw), (bm25, bw)], k)) < 1e-12
        assert hit.vector_score == dict(vector).get(hit.chunk_id)
        assert hit.bm25_score == dict(bm25).get(hit.chunk_id)
    assert all(a.score >= b.score for a, b in zip(fused, fused[1:], strict=False))


@PROPERTY
@given(vector=rankings(), bm25=rankings(), vw=weights, bw=weights)
def test_fusion_is_symmetric_in_its_two_rankings(
    vector: list[tuple[str, float]], bm25: list[tuple[str, float]], vw: float, bw: float
) -> None:
    forward = {h.chunk_id: h.score for h in fuse_rankings(vector, bm25, vector_weight=vw, bm25_weight=bw)}
    backward = {h.chunk_id: h.score for h in fuse_rankings(bm25, vector, vector_weight=bw, bm25_weight=vw)}
    assert forward.keys() == backward.keys()
    assert all(abs(forward[c] - backward[c]) < 1e-12 for c in forward)


@PROPERTY
@given(vector=rankings(), bm25=rankings())
def test_better_in_both_rankings_is_never_behind(
    vector: list[tuple[str, float]], bm25: list[tuple[str, float]]
) -> None:
    fused = fuse_rankings(vector, bm25)
    position = {h.chunk_id: i for i, h in enumerate(fused)}
    vector_rank = {cid: i for i, (cid, _) in enumerate(vector)}
    bm25_rank = {cid: i for i, (cid, _) in enumerate(bm25)}
    both = [cid for cid in vector_rank if cid in bm25_rank]
    for a in both:
        for b in both:
            if vector_rank[a] < vector_rank[b] and bm25_rank[a] < bm25_rank[b]:
                assert position[a] < position[b]


@PROPERTY
@given(whole=rankings(), parts=st.lists(rankings(), max_size=2), keep=st.integers(1, 10))
def test_each_parts_best_passage_joins_the_whole_messages_first(
    whole: list[tuple[str, float]], parts: list[list[tuple[str, float]]], keep: int
) -> None:
    fused = with_best_of_parts(
        [FusedHit(cid, score) for cid, score in whole],
        [[FusedHit(cid, score) for cid, score in part] for part in parts],
        keep,
    )
    ids = [hit.chunk_id for hit in fused]
    bests = {part[0][0] for part in parts if part}
    assert len(ids) == len(set(ids))
    assert set(ids) == {cid for cid, _ in whole} | bests  # nothing of the whole is lost
    if whole:
        assert ids[0] == whole[0][0]  # the whole message's best passage stays first
    if keep > len(parts):
        assert bests <= set(ids[:keep])
        # The whole's best passages keep their order ahead of what the parts added.
        kept = [cid for cid, _ in whole[: keep - len(parts)]]
        assert ids[: len(kept)] == kept
    for hit in fused:  # a hit keeps the scores of the ranking it was taken from
        assert hit.score in {
            score for ranking in [whole, *parts] for cid, score in ranking if cid == hit.chunk_id
        }
