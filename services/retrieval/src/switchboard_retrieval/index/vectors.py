"""The vector index: one Chroma collection per knowledge base, named by tenant, embeddings passed explicitly.

Embeddings are always computed by our own models and handed to Chroma, and collections are opened with
``embedding_function=None``: Chroma's default function would try to download its model when a
collection is reopened. Chroma's client is synchronous, so every call runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import chromadb
import numpy as np
from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from chromadb.config import Settings as ChromaSettings
from chromadb.errors import NotFoundError

from switchboard_retrieval.embeddings.encoders import Vectors
from switchboard_retrieval.settings import RetrievalSettings


@dataclass
class VectorHit:
    chunk_id: str
    similarity: float


def collection_name(tenant_id: str, kb_id: str) -> str:
    """``t-<tenant slug>-<tenant hash>-<kb id>``: valid for Chroma whatever characters the tenant id has."""
    slug = re.sub(r"[^a-zA-Z0-9]+", "-", tenant_id).strip("-")[:24] or "x"
    digest = hashlib.sha1(tenant_id.encode()).hexdigest()[:8]
    return f"t-{slug}-{digest}-{kb_id}"


def open_client(settings: RetrievalSettings) -> ClientAPI:
    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_url:
        from urllib.parse import urlsplit

        url = urlsplit(settings.chroma_url)
        return chromadb.HttpClient(
            host=url.hostname or "127.0.0.1",
            port=url.port or (443 if url.scheme == "https" else 8000),
            ssl=url.scheme == "https",
            settings=chroma_settings,
        )
    return chromadb.PersistentClient(path=settings.chroma_dir(), settings=chroma_settings)


class VectorStore:
    def __init__(self, client: ClientAPI) -> None:
        self.client = client
        self._collections: dict[str, Collection] = {}

    def _collection(self, name: str) -> Collection:
        collection = self._collections.get(name)
        if collection is None:
            collection = self.client.get_or_create_collection(
                name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
            )
            self._collections[name] = collection
        return collection

    async def upsert(
        self, name: str, ids: Sequence[str], vectors: Vectors, metadatas: Sequence[dict[str, Any]]
    ) -> None:
        if not ids:
            return

        def run() -> None:
            self._collection(name).upsert(
                ids=list(ids), embeddings=np.asarray(vectors, dtype=np.float32), metadatas=list(metadatas)
            )

        await asyncio.to_thread(run)

    async def delete(self, name: str, ids: Sequence[str]) -> None:
        if not ids:
            return
        id_list = list(ids)

        def run() -> None:
            collection = self._collection(name)
            for start in range(0, len(id_list), 5000):
                collection.delete(ids=id_list[start : start + 5000])

        await asyncio.to_thread(run)

    async def present(self, name: str, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` the collection holds."""
        if not ids:
            return set()
        id_list = list(ids)

        def run() -> set[str]:
            collection = self._collection(name)
            found: set[str] = set()
            for start in range(0, len(id_list), 5000):
                found.update(collection.get(ids=id_list[start : start + 5000], include=[])["ids"])
            return found

        return await asyncio.to_thread(run)

    def query_sync(
        self, name: str, vector: Vectors, k: int, where: dict[str, Any] | None = None
    ) -> list[VectorHit]:
        """Nearest chunks by cosine similarity (call from a worker thread)."""
        collection = self._collection(name)
        result = collection.query(
            query_embeddings=[np.asarray(vector, dtype=np.float32)],  # type: ignore[arg-type]
            n_results=k,
            where=where,
            include=["distances"],
        )
        ids = result["ids"][0]
        distances = (result["distances"] or [[]])[0]
        return [VectorHit(i, 1.0 - float(d)) for i, d in zip(ids, distances, strict=True)]

    async def query(
        self, name: str, vector: Vectors, k: int, where: dict[str, Any] | None = None
    ) -> list[VectorHit]:
        return await asyncio.to_thread(self.query_sync, name, vector, k, where)

    async def count(self, name: str) -> int:
        return await asyncio.to_thread(lambda: self._collection(name).count())

    async def drop(self, name: str) -> None:
        def run() -> None:
            self._collections.pop(name, None)
            try:
                self.client.delete_collection(name)
            except (NotFoundError, ValueError):
                pass

        await asyncio.to_thread(run)

    async def ping(self) -> None:
        await asyncio.to_thread(self.client.heartbeat)
