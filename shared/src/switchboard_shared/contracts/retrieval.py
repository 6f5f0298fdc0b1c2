"""Contracts of the retrieval service's internal API (``/internal/v1/search``), used by chat."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, Field, StringConstraints

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
    curated: bool = Field(
        default=False,
        description="Also match the tenant's curated answers (a customer's turn: a match counts as a hit)",
    )


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
    rerank_score: float | None = Field(
        default=None, description="Reserved for a second-stage reranker; the service has none (always null)"
    )
    language: str | None = None


class CuratedMatch(Contract):
    """A curated answer whose question (or a variant of it) means what the query asks."""

    answer_id: str
    question: str = Field(description="The question or variant that matched")
    answer: str
    language: str
    score: float = Field(description="Cosine similarity of the query and the matched question")
    threshold: float
    kb_id: str | None = None


class QueryWords(Contract):
    """How common each word of the searched query is in the searched knowledge bases: a word most passages
    hold ("documentation" across a documentation site) tells the right sentence from the others less than a
    rare one ("webhook"). The answerer weighs shared words by it."""

    chunks: int = Field(ge=0, description="Passages (chunks) in the searched knowledge bases")
    frequencies: dict[str, int] = Field(
        default_factory=dict,
        description="Each content word of the query as searched (lower-cased) -> how many passages hold it "
        "(compared by stem); stop words are left out",
    )


class SearchResponse(Contract):
    hits: list[SearchHit]
    query_language: str | None = None
    corrected_query: str | None = Field(
        default=None,
        description="The query as searched when spelling correction changed a word of it "
        '("cancle a bulid" searched as "cancel a build"); null when it was searched as written',
    )
    query_words: QueryWords | None = Field(
        default=None, description="How common the query's words are in the searched knowledge bases"
    )
    took_ms: float
    curated: CuratedMatch | None = Field(
        default=None, description="Set when the request asked for curated answers and one matched"
    )


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

    async def suggest_curated(self, *, tenant_id: str, suggestion: CuratedSuggestionCreate) -> None:
        """Record an operator's reply to a question the bot could not answer (idempotent per conversation
        and question, so retried safely)."""
        await self._post("/internal/v1/curated/suggestions", tenant_id, suggestion)

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


# ---- Curated answers: a tenant's question -> answer pairs (the gateway exposes them as /v1/curated) ----

# ISO 639-1: the language of an entry's question and answer.
ISO_639_1 = frozenset(
    """aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de dv
    dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig ii
    ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk
    ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc
    sd se sg si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve
    vi vo wa wo xh yi yo za zh zu""".split()
)
MAX_CURATED_VARIANTS = 50


def _known_language(value: str) -> str:
    code = value.strip().lower()
    if code not in ISO_639_1:
        raise ValueError(f"unknown language {value!r}: expected an ISO 639-1 code such as 'en' or 'ru'")
    return code


LanguageCode = Annotated[str, AfterValidator(_known_language)]
CuratedQuestion = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
CuratedAnswerText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=8000)]
CuratedTag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
CuratedGroup = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class CuratedAnswerCreate(Contract):
    question: CuratedQuestion
    variants: list[CuratedQuestion] = Field(
        default_factory=list, max_length=MAX_CURATED_VARIANTS, description="Other wordings of the question"
    )
    answer: CuratedAnswerText
    language: LanguageCode | None = Field(
        default=None, description="ISO 639-1 of the question and answer; None: detected from the question"
    )
    tags: list[CuratedTag] = Field(default_factory=list, max_length=50)
    group: CuratedGroup | None = Field(
        default=None,
        description="Entries sharing a group ask one question in several languages: a customer whose message "
        "matches one of them is answered with the one in the customer's language",
    )
    kb_id: str | None = Field(
        default=None,
        max_length=64,
        description="The knowledge base whose embedding model (and searches) the entry belongs to; None: "
        "every search of the tenant, on the service's default model",
    )
    expires_at: AwareDatetime | None = Field(default=None, description="Not answered with after this time")


class CuratedAnswerUpdate(Contract):
    question: CuratedQuestion | None = None
    variants: list[CuratedQuestion] | None = Field(default=None, max_length=MAX_CURATED_VARIANTS)
    answer: CuratedAnswerText | None = None
    language: LanguageCode | None = None
    tags: list[CuratedTag] | None = Field(default=None, max_length=50)
    group: CuratedGroup | None = Field(
        default=None, description="An explicit null takes the entry out of its group"
    )
    kb_id: str | None = Field(default=None, max_length=64, description="An explicit null unlinks the entry")
    expires_at: AwareDatetime | None = Field(default=None, description="An explicit null clears the expiry")


class CuratedAnswerOut(Contract):
    id: str
    question: str
    variants: list[str]
    answer: str
    language: str
    tags: list[str]
    group: str | None
    kb_id: str | None
    embedding_model: str
    expires_at: datetime | None
    hit_count: int
    last_hit_at: datetime | None
    created_at: datetime
    updated_at: datetime


class CuratedSettings(Contract):
    threshold: float | None = Field(
        default=None,
        ge=0.3,
        le=1.0,
        description="Cosine similarity a message needs to get a curated answer; None: the calibrated "
        "default of each embedding model",
    )


class CuratedSettingsOut(CuratedSettings):
    defaults: dict[str, float] = Field(description="The calibrated default threshold per embedding model")


class CuratedMatchRequest(Contract):
    """A dry run: which curated answer (if any) a message would get; no hit is counted."""

    query: str = Field(min_length=1, max_length=4000)
    language: LanguageCode | None = None
    kb_ids: list[str] | None = None


class CuratedMatchResponse(Contract):
    match: CuratedMatch | None
    took_ms: float


# ---- Suggested curated answers: what operators answered when the bot could not ----

SuggestionReason = Literal["no_answer", "thumbs_down", "handoff"]
SuggestionStatus = Literal["pending", "approved", "dismissed"]


class CuratedSuggestionCreate(Contract):
    """A customer's question the bot could not answer, with the reply an operator gave it (chat sends one
    when an operator resolves the conversation). The same question of the same conversation is one
    suggestion, however often it is sent."""

    question: CuratedQuestion
    answer: CuratedAnswerText
    language: LanguageCode | None = Field(default=None, description="None: detected from the question")
    conversation_id: str = Field(min_length=1, max_length=64)
    reason: SuggestionReason


class CuratedSuggestionOut(Contract):
    id: str
    question: str
    answer: str
    language: str
    conversation_id: str
    reason: SuggestionReason
    created_at: datetime


class CuratedSuggestionGroupOut(Contract):
    """Suggestions whose questions mean the same (as close as a curated match needs), ranked by how many
    customers asked."""

    id: str = Field(description="The group's id: the id of its first suggestion")
    status: SuggestionStatus
    question: str = Field(description="The first customer's wording")
    answer: str = Field(description="The latest operator reply")
    language: str
    customers: int = Field(description="Conversations that asked it")
    suggestions: list[CuratedSuggestionOut] = Field(description="Newest first, at most 20")
    curated_answer_id: str | None = Field(description="The curated answer an approval made")
    first_asked_at: datetime
    last_asked_at: datetime


class CuratedSuggestionApprove(Contract):
    """The curated answer to make of a group, as the operator edited it. ``variants`` None: the group's
    other customer wordings (in any language: they are matched by meaning)."""

    question: CuratedQuestion
    answer: CuratedAnswerText
    language: LanguageCode | None = None
    variants: list[CuratedQuestion] | None = Field(default=None, max_length=MAX_CURATED_VARIANTS)
    tags: list[CuratedTag] = Field(default_factory=list, max_length=50)
    group: CuratedGroup | None = None
    kb_id: str | None = Field(default=None, max_length=64)


class CuratedSuggestionMerge(Contract):
    into: str = Field(
        min_length=1, max_length=64, description="The pending group that takes these suggestions"
    )


class CuratedSuggestionApproved(Contract):
    group: CuratedSuggestionGroupOut
    answer: CuratedAnswerOut
