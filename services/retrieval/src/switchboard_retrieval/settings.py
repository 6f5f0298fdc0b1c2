"""Settings of the retrieval service (environment prefix ``RETRIEVAL_``)."""

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from switchboard_shared.settings import ServiceSettings

CURATED_THRESHOLDS = {"use-multilingual": 0.88, "minilm": 0.88, "e5-small": 0.97}


class RetrievalSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="RETRIEVAL_", env_file=".env", extra="ignore", populate_by_name=True
    )
    service_name: ClassVar[str] = "retrieval"
    secret_fields: ClassVar[tuple[str, ...]] = ("internal_token",)

    port: int = Field(default=8002, description="Listen port")
    auto_migrate: bool = Field(default=True, description="Run Alembic migrations at start-up")

    chroma_url: str | None = Field(
        default=None, description="Chroma server URL (HttpClient); unset means embedded under data_dir/chroma"
    )
    chroma_path: str | None = Field(
        default=None, description="Embedded Chroma directory (default data_dir/chroma)"
    )
    index_dir: str | None = Field(default=None, description="BM25 index directory (default data_dir/bm25)")
    upload_dir: str | None = Field(default=None, description="Uploaded files (default data_dir/uploads)")

    default_embedding_model: str = Field(
        default="use-multilingual",
        description="Embedding model of new knowledge bases: minilm, use-multilingual, e5-small, openai, google",
    )
    similarity_cache_size: int = Field(
        default=8192, ge=0, le=1_000_000, description="Sentence vectors kept for chat's similarity requests"
    )
    embed_batch_size: int = Field(default=32, ge=1, le=512, description="Texts per embedding batch")
    embedding_threads: int = Field(
        default=2, ge=1, le=64, description="CPU threads for local embedding models"
    )
    openai_api_key: str | None = Field(default=None, description="Key for hosted OpenAI embeddings")
    openai_base_url: str = Field(
        default="https://api.openai.com/v1", description="OpenAI-compatible base URL"
    )
    openai_embedding_model: str = Field(default="text-embedding-3-small", description="Hosted model name")
    google_api_key: str | None = Field(default=None, description="Key for hosted Google (Gemini) embeddings")
    google_base_url: str = Field(
        default="https://generativelanguage.googleapis.com/v1beta", description="Gemini API base URL"
    )
    google_embedding_model: str = Field(
        default="gemini-embedding-001", description="Hosted Gemini model name"
    )

    chunk_size: int = Field(default=800, ge=100, le=8000, description="Target chunk size (characters)")
    chunk_overlap: int = Field(default=100, ge=0, le=2000, description="Overlap between chunks (characters)")

    max_upload_bytes: int = Field(default=20 * 1024 * 1024, description="Largest uploaded file (bytes)")
    max_document_bytes: int = Field(default=20 * 1024 * 1024, description="Largest fetched document (bytes)")
    crawl_max_pages: int = Field(default=500, ge=1, description="Default page limit of a sitemap crawl")
    crawl_max_depth: int = Field(default=3, ge=0, description="Default nesting limit of sitemap indexes")
    crawl_user_agent: str = Field(default="SwitchboardBot/0.1", description="User agent of URL ingestion")
    fetch_timeout: float = Field(default=20.0, description="Timeout of one fetched URL (s)")
    url_allowlist: list[str] = Field(
        default_factory=list,
        description="Hosts or CIDR ranges that URL sources may reach even though they are loopback/private",
    )

    files_roots: list[str] = Field(
        default_factory=list,
        description="Local directories that files/faq sources may read; '{tenant}' in an entry stands for the "
        "tenant's id, an entry without it is shared by every tenant (empty: each tenant's own "
        "data_dir/files/<tenant> outside production, none in it); the service's own uploads, indexes and "
        "databases are never readable",
    )
    files_protocols: list[str] = Field(
        default_factory=lambda: ["file", "local"],
        description="fsspec protocols files/faq sources may use, every link of a chained URL included "
        "(http and https never: use url or sitemap sources)",
    )

    job_concurrency: int = Field(default=2, ge=1, le=32, description="Ingestion jobs run at once per replica")
    scheduler_interval_seconds: float = Field(
        default=30.0, description="How often scheduled sources are checked (0 turns the scheduler off)"
    )
    job_lease_seconds: float = Field(
        default=15.0,
        ge=3.0,
        le=3600.0,
        description="How long a queued-job worker holds a job without renewing it (renewed every third of it); "
        "a job whose lease ran out is put back in the queue by any replica",
    )
    use_job_queue: bool = Field(
        default=True, description="With redis_url set, run jobs through the arq Redis queue (any replica)"
    )
    # Fusion and query settings chosen with bench/retrieval_quality.py on the customer-phrased question sets.
    rrf_k: int = Field(default=20, ge=1, description="Reciprocal rank fusion constant")
    rrf_vector_weight: float = Field(default=1.0, ge=0, description="Weight of the vector ranking in fusion")
    rrf_bm25_weight: float = Field(default=0.7, ge=0, description="Weight of the BM25 ranking in fusion")
    bm25_weight_by_coverage: bool = Field(
        default=True,
        description="Scale the BM25 weight by the share of query words the knowledge base's index knows",
    )
    spelling_correction: bool = Field(
        default=True, description="Correct query words unknown to the knowledge base to its closest word"
    )
    spelling_for_vectors: bool = Field(default=True, description="Embed the spelling-corrected query too")
    search_question_parts: bool = Field(
        default=True,
        description="Search each question of a message that asks two as well as the whole; each one's best passage is kept",
    )

    # Calibrated with eval/curated/ (bench/curated_threshold.py): the lowest threshold from which precision
    # stays >= 0.95 on the English and Russian paraphrases and near misses, per model.
    curated_thresholds: dict[str, float] = Field(
        default_factory=lambda: dict(CURATED_THRESHOLDS),
        description="Default cosine similarity a message needs to get a curated answer, per embedding model "
        "(a tenant may set its own)",
    )
    curated_threshold: float = Field(
        default=0.9,
        ge=0.0,
        le=1.0,
        description="Default curated-answer threshold of a model missing from curated_thresholds",
    )

    demo_kb_dir: str | None = Field(
        default=None,
        description="When set, a knowledge base 'demo' of tenant 'demo' is synced from it at start-up",
    )

    def chroma_dir(self) -> str:
        return self.chroma_path or f"{self.data_dir}/chroma"

    def bm25_dir(self) -> str:
        return self.index_dir or f"{self.data_dir}/bm25"

    def uploads_dir(self) -> str:
        return self.upload_dir or f"{self.data_dir}/uploads"
