"""The BM25 index of each knowledge base (bm25s), persisted on disk and rebuilt when its version is stale.

The SQL chunk table is the source of truth: the index carries the knowledge base's ``index_version``, and
a replica whose copy is missing or older rebuilds it from the chunks, so replicas need no shared disk.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import bm25s
import numpy as np
import numpy.typing as npt

from switchboard_retrieval.index.spelling import word_counts
from switchboard_retrieval.index.text import tokenize

ChunkTexts = list[tuple[str, str, str]]  # (chunk id, source id, indexed text)


@dataclass
class Bm25Index:
    version: int
    ids: list[str]
    sources: list[str]
    retriever: bm25s.BM25 | None
    positions: dict[str, int] = field(default_factory=dict)
    # How often each word occurs in the knowledge base: the vocabulary that query spelling is corrected to.
    words: dict[str, int] = field(default_factory=dict)

    @classmethod
    def build(cls, version: int, rows: ChunkTexts) -> Bm25Index:
        ids = [chunk_id for chunk_id, _, _ in rows]
        sources = [source_id for _, source_id, _ in rows]
        if not rows:
            return cls(version, [], [], None)
        retriever = bm25s.BM25(k1=1.2, b=0.75)
        retriever.index([tokenize(text) for _, _, text in rows], show_progress=False)
        words = dict(word_counts(text for _, _, text in rows))
        return cls(version, ids, sources, retriever, {chunk_id: i for i, chunk_id in enumerate(ids)}, words)

    @property
    def stems(self) -> dict[str, int]:
        """The indexed terms (stems) of the knowledge base."""
        vocabulary: dict[str, int] = self.retriever.vocab_dict if self.retriever is not None else {}
        return vocabulary

    def frequencies(self, stems: Sequence[str], sources: set[str] | None = None) -> tuple[int, list[int]]:
        """The number of chunks, and how many of them hold each stem (0 for a stem the knowledge base
        lacks), counting only the chunks of the given sources when ``sources`` is set."""
        if self.retriever is None:
            return 0, [0] * len(stems)
        vocab, scores = self.retriever.vocab_dict, self.retriever.scores
        indptr, indices = scores["indptr"], scores["indices"]
        spans = [(int(indptr[vocab[s]]), int(indptr[vocab[s] + 1])) if s in vocab else (0, 0) for s in stems]
        if sources is None:
            return len(self.ids), [end - start for start, end in spans]
        mask = self.of_sources(sources)
        return int(mask.sum()), [int(mask[indices[start:end]].sum()) for start, end in spans]

    def of_sources(self, sources: set[str]) -> npt.NDArray[np.bool_]:
        """Which chunks belong to the given sources (a mask in index order)."""
        return np.fromiter((s in sources for s in self.sources), dtype=bool, count=len(self.sources))

    def search(self, query: str, k: int, sources: set[str] | None = None) -> list[tuple[str, float]]:
        """Top ``k`` (chunk id, score) with a positive score, optionally only from the given sources."""
        if self.retriever is None:
            return []
        vocab = self.retriever.vocab_dict
        tokens = [t for t in tokenize(query) if t in vocab]
        if not tokens:
            return []
        scores = self.retriever.get_scores(tokens)
        if sources is not None:
            scores = np.where(self.of_sources(sources), scores, 0.0)
        k = min(k, len(self.ids))
        top = np.argpartition(-scores, k - 1)[:k] if k < len(self.ids) else np.arange(len(self.ids))
        ranked = sorted(top.tolist(), key=lambda i: -scores[i])
        return [(self.ids[i], float(scores[i])) for i in ranked if scores[i] > 0]

    def save(self, directory: Path) -> None:
        tmp = directory.with_name(directory.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        if self.retriever is not None:
            self.retriever.save(str(tmp), show_progress=False)
        (tmp / "chunk_ids.json").write_text(
            json.dumps({"version": self.version, "ids": self.ids, "sources": self.sources})
        )
        (tmp / "words.json").write_text(json.dumps(self.words, ensure_ascii=False))
        shutil.rmtree(directory, ignore_errors=True)
        tmp.rename(directory)

    @classmethod
    def load(cls, directory: Path) -> Bm25Index | None:
        meta_path, words_path = directory / "chunk_ids.json", directory / "words.json"
        if not meta_path.exists() or not words_path.exists():
            return None  # missing, or written before the vocabulary was kept: rebuilt from SQL
        meta = json.loads(meta_path.read_text())
        ids: list[str] = meta["ids"]
        retriever = bm25s.BM25.load(str(directory), show_progress=False) if ids else None
        sources: list[str] = meta["sources"]
        words: dict[str, int] = json.loads(words_path.read_text())
        return cls(
            int(meta["version"]), ids, sources, retriever, {cid: i for i, cid in enumerate(ids)}, words
        )


class Bm25Store:
    """Per-KB indexes in memory, backed by ``<dir>/<kb_id>/``."""

    def __init__(self, directory: str) -> None:
        self.directory = Path(directory)
        self._indexes: dict[str, Bm25Index] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, kb_id: str) -> asyncio.Lock:
        return self._locks.setdefault(kb_id, asyncio.Lock())

    async def get(
        self, kb_id: str, version: int, load_rows: Callable[[], Awaitable[ChunkTexts]]
    ) -> Bm25Index:
        index = self._indexes.get(kb_id)
        if index is not None and index.version == version:
            return index
        async with self._lock(kb_id):
            index = self._indexes.get(kb_id)
            if index is not None and index.version == version:
                return index
            path = self.directory / kb_id
            index = await asyncio.to_thread(Bm25Index.load, path)
            if index is None or index.version != version:
                rows = await load_rows()
                index = await asyncio.to_thread(Bm25Index.build, version, rows)
                await asyncio.to_thread(index.save, path)
            self._indexes[kb_id] = index
            return index

    async def rebuild(self, kb_id: str, version: int, rows: ChunkTexts) -> Bm25Index:
        async with self._lock(kb_id):
            index = await asyncio.to_thread(Bm25Index.build, version, rows)
            await asyncio.to_thread(index.save, self.directory / kb_id)
            self._indexes[kb_id] = index
            return index

    async def drop(self, kb_id: str) -> None:
        async with self._lock(kb_id):
            self._indexes.pop(kb_id, None)
            await asyncio.to_thread(shutil.rmtree, self.directory / kb_id, True)

    def drop_many(self, kb_ids: Sequence[str]) -> None:
        for kb_id in kb_ids:
            self._indexes.pop(kb_id, None)
