"""Query vectors kept per model: the same query text is embedded once while it stays among the recent ones."""

from __future__ import annotations

import numpy as np
import pytest

from switchboard_retrieval.embeddings.encoders import CachedQueries, Vectors


class Counting:
    name = "counting"
    dim = 2

    def __init__(self) -> None:
        self.queries: list[str] = []
        self.documents: list[list[str]] = []

    def embed_query(self, text: str) -> Vectors:
        self.queries.append(text)
        return np.array([len(text), 1.0], dtype=np.float32)

    def embed_documents(self, texts: list[str]) -> Vectors:
        self.documents.append(texts)
        return np.ones((len(texts), 2), dtype=np.float32)


def test_a_repeated_query_is_embedded_once() -> None:
    model = Counting()
    cached = CachedQueries(model, capacity=8)
    first = cached.embed_query("delivery")
    again = cached.embed_query("delivery")
    assert model.queries == ["delivery"]
    assert np.array_equal(first, again)
    assert (cached.name, cached.dim) == ("counting", 2)


def test_the_least_recently_used_query_is_dropped_first() -> None:
    model = Counting()
    cached = CachedQueries(model, capacity=2)
    cached.embed_query("a")
    cached.embed_query("b")
    cached.embed_query("a")  # "b" is now the least recently used
    cached.embed_query("c")
    cached.embed_query("a")
    cached.embed_query("b")
    assert model.queries == ["a", "b", "c", "b"]


def test_documents_are_not_cached_and_vectors_cannot_be_changed_by_a_caller() -> None:
    model = Counting()
    cached = CachedQueries(model)
    cached.embed_documents(["x"])
    cached.embed_documents(["x"])
    assert model.documents == [["x"], ["x"]]
    vector = cached.embed_query("q")
    with pytest.raises(ValueError):
        vector[0] = 0.0


def test_no_capacity_caches_nothing() -> None:
    model = Counting()
    cached = CachedQueries(model, capacity=0)
    cached.embed_query("q")
    cached.embed_query("q")
    assert model.queries == ["q", "q"]
