"""Groups unanswered questions that mean the same thing: character n-gram TF-IDF and cosine similarity.

Character n-grams work for Russian and English alike, need no model and no network, and tolerate typos
and word forms ("пароль" / "пароля", "reset" / "resetting").

numpy (some 10 MB resident) is imported by the functions that use it, so it loads with the first report
that clusters, not with the service.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

NGRAM_SIZES = (3, 4)
DEFAULT_THRESHOLD = 0.55


@dataclass
class Cluster:
    text: str
    count: int
    variants: list[tuple[str, int]] = field(default_factory=list)


def _ngrams(text: str) -> list[str]:
    grams: list[str] = []
    for word in text.split():
        padded = f" {word} "
        for size in NGRAM_SIZES:
            grams.extend(padded[i : i + size] for i in range(max(1, len(padded) - size + 1)))
    return grams


def tfidf_matrix(texts: list[str]) -> np.ndarray:
    """Rows are L2-normalised TF-IDF vectors of the texts' character n-grams."""
    import numpy as np

    vocabulary: dict[str, int] = {}
    documents = []
    for text in texts:
        counts: dict[int, int] = {}
        for gram in _ngrams(text):
            column = vocabulary.setdefault(gram, len(vocabulary))
            counts[column] = counts.get(column, 0) + 1
        documents.append(counts)
    matrix = np.zeros((len(texts), max(1, len(vocabulary))), dtype=np.float32)
    for row, counts in enumerate(documents):
        for column, count in counts.items():
            matrix[row, column] = 1.0 + np.log(count)
    document_frequency = (matrix > 0).sum(axis=0)
    matrix *= np.log((1 + len(texts)) / (1 + document_frequency)) + 1.0
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    normalised: np.ndarray = matrix / norms
    return normalised


def cluster_questions(
    counted: list[tuple[str, int]], *, threshold: float = DEFAULT_THRESHOLD
) -> list[Cluster]:
    """Greedy clustering: the most asked question heads a cluster and takes every similar one."""
    if not counted:
        return []
    import numpy as np

    counted = sorted(counted, key=lambda item: (-item[1], item[0]))
    texts = [text for text, _ in counted]
    vectors = tfidf_matrix(texts)
    similarity = vectors @ vectors.T
    assigned = np.zeros(len(texts), dtype=bool)
    clusters: list[Cluster] = []
    for head in range(len(texts)):
        if assigned[head]:
            continue
        members = np.flatnonzero(~assigned & (similarity[head] >= threshold))
        members = np.union1d(members, [head])
        assigned[members] = True
        variants = [counted[int(index)] for index in members]
        variants.sort(key=lambda item: (-item[1], item[0]))
        clusters.append(Cluster(text=texts[head], count=sum(n for _, n in variants), variants=variants))
    clusters.sort(key=lambda cluster: (-cluster.count, cluster.text))
    return clusters
