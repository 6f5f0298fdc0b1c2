"""Contracts of the retrieval service's internal API (``/internal/v1/search``), used by chat."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field

from switchboard_shared.contracts.common import Contract
from switchboard_shared.contracts.routes import TENANT_HEADER

if TYPE_CHECKING:
    from switchboard_shared.http_client import Downstream

SearchMode = Literal["hybrid", "vector", "bm25"]


class SearchFilters(Contract):
    source_ids: list[str] | None = None
    tags: list[str] | None = None


class SearchRequest(Contract):
    query: str = Field(min_length=1, max_length=4000)
    kb_ids: list[str] | None = Field(default=None, description="None: every knowledge base of the tenant")
    top_k: int = Field(default=6, ge=1, le=50)
    mode: SearchMode = "hybrid"
    filters: SearchFilters = Field(default_factory=SearchFilters)
    language: str | None = Field(default=None, description="ISO 639-1; None: detected from the query")


class SearchHit(Contract):
    chunk_id: str
    document_id: str
    kb_id: str
    source_id: str
    title: str
    heading_path: list[str] = Field(default_factory=list)
    url: str | None = None
    text: str
    snippet: str
    score: float
    vector_score: float | None = None
    bm25_score: float | None = None
    rerank_score: float | None = None
    language: str | None = None


class SearchResponse(Contract):
    hits: list[SearchHit]
    query_language: str | None = None
    took_ms: float


class SimilarityRequest(Contract):
    """Texts compared with queries in one knowledge base's embedding space (``/internal/v1/similarity``):
    how an answerer without a model of its own finds the sentences that mean what a question asks."""

    kb_id: str = Field(min_length=1, max_length=64)
    queries: list[Annotated[str, Field(min_length=1, max_length=4000)]] = Field(min_length=1, max_length=4)
    texts: list[Annotated[str, Field(min_length=1, max_length=2000)]] = Field(min_length=1, max_length=256)


class SimilarityResponse(Contract):
    model: str = Field(description="The knowledge base's embedding model")
    scores: list[list[float]] = Field(description="Cosine similarity, one row per query, one column per text")
    took_ms: float


class RetrievalClient:
    """The typed client of retrieval's internal API, on the caller's shared downstream client."""

    def __init__(self, downstream: Downstream, *, timeout: float) -> None:
        self.downstream = downstream
        self.timeout = timeout

    async def search(self, *, tenant_id: str, request: SearchRequest) -> SearchResponse:
        return SearchResponse.model_validate(await self._post("/internal/v1/search", tenant_id, request))

    async def similarity(self, *, tenant_id: str, request: SimilarityRequest) -> SimilarityResponse:
        return SimilarityResponse.model_validate(
            await self._post("/internal/v1/similarity", tenant_id, request)
        )

    async def _post(self, path: str, tenant_id: str, body: Contract) -> Any:
        return await self.downstream.json_request(
            "POST",
            path,
            json=body.model_dump(mode="json"),
            headers={TENANT_HEADER: tenant_id},
            idempotent=True,
            timeout=self.timeout,
        )


# ---- Admin API of knowledge bases (the gateway exposes it as /v1/kbs, /v1/jobs) ----

EmbeddingModel = Literal["minilm", "use-multilingual", "e5-small", "openai", "google"]
SourceType = Literal["upload", "files", "url", "sitemap", "confluence", "faq"]
JobStatus = Literal["queued", "running", "succeeded", "failed"]


class KnowledgeBaseCreate(Contract):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    embedding_model: EmbeddingModel | None = Field(default=None, description="None: the service default")


class KnowledgeBaseUpdate(Contract):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)


class KnowledgeBaseOut(Contract):
    id: str
    name: str
    description: str
    embedding_model: str
    document_count: int = 0
    chunk_count: int = 0
    source_count: int = 0
    created_at: datetime
    updated_at: datetime


class SourceCreate(Contract):
    type: SourceType
    name: str = Field(default="", max_length=200)
    config: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list, max_length=50)
    schedule_minutes: int | None = Field(default=None, ge=5, le=60 * 24 * 30, description="None: manual only")
    sync: bool = Field(default=True, description="Start a sync job right away")


class SourceUpdate(Contract):
    name: str | None = Field(default=None, max_length=200)
    config: dict[str, Any] | None = None
    tags: list[str] | None = Field(default=None, max_length=50)
    schedule_minutes: int | None = Field(default=None, ge=5, le=60 * 24 * 30)


class SourceOut(Contract):
    id: str
    kb_id: str
    type: str
    name: str
    config: dict[str, Any]
    tags: list[str]
    schedule_minutes: int | None
    last_sync_at: datetime | None
    last_sync_status: str | None
    last_sync_result: dict[str, Any] | None
    created_at: datetime


class SyncCounts(Contract):
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    documents_added: int = 0
    documents_updated: int = 0
    documents_unchanged: int = 0
    documents_deleted: int = 0


class DocumentFailure(Contract):
    document: str
    reason: str


class IngestionJobOut(Contract):
    id: str
    kb_id: str
    source_id: str | None
    document_id: str | None = Field(default=None, description="Set when the job re-syncs one document")
    status: JobStatus
    documents_total: int | None = Field(default=None, description="Known once the source is listed")
    documents_seen: int
    documents_done: int
    documents_failed: int
    chunks_embedded: int
    counts: SyncCounts
    failures: list[DocumentFailure]
    error: str | None
    attempts: int
    rate_docs_per_s: float | None = None
    rate_chunks_per_s: float | None = None
    eta_seconds: float | None = None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class SourceCreated(Contract):
    source: SourceOut
    job: IngestionJobOut | None = None


class UploadAccepted(Contract):
    source_id: str
    files: list[str]
    job: IngestionJobOut | None = Field(default=None, description="None when uploaded with sync=false")


class StoredFile(Contract):
    """A file kept by an upload source: its path in the source, size and SHA-256 (to skip unchanged ones)."""

    name: str
    size: int
    sha256: str


class StoredFilesPrune(Contract):
    keep: list[str] = Field(max_length=100_000, description="The files the source should hold; others go")


class StoredFilesPruned(Contract):
    deleted: list[str]


class DocumentOut(Contract):
    id: str
    kb_id: str
    source_id: str
    uri: str
    name: str
    title: str
    url: str | None
    language: str | None
    status: str
    error: str | None
    chunk_count: int
    updated_at: datetime


class ChunkOut(Contract):
    id: str
    document_id: str
    ordinal: int
    text: str
    title: str
    heading_path: list[str]
    url: str | None
    language: str | None
