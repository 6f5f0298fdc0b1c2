"""What the retrieval service keeps for its lifetime besides the platform: models, indexes, fetcher, jobs,
curated answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from switchboard_retrieval.curated.matching import CuratedIndexes
from switchboard_retrieval.embeddings.encoders import EmbeddingRegistry
from switchboard_retrieval.index.bm25 import Bm25Store
from switchboard_retrieval.index.vectors import VectorStore
from switchboard_retrieval.ingestion.chunking import Chunker
from switchboard_retrieval.ingestion.fetching import Fetcher
from switchboard_retrieval.settings import RetrievalSettings

if TYPE_CHECKING:
    from switchboard_retrieval.jobs.runner import JobRunner


@dataclass
class Runtime:
    settings: RetrievalSettings
    sessionmaker: async_sessionmaker[AsyncSession]
    embeddings: EmbeddingRegistry
    vectors: VectorStore
    bm25: Bm25Store
    fetcher: Fetcher
    chunker: Chunker
    jobs: JobRunner
    # Curated answers per tenant, in memory, reloaded when the tenant's curated version moves.
    curated: CuratedIndexes = field(default_factory=CuratedIndexes)
