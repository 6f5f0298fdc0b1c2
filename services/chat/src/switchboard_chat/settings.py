"""Settings of the chat service (environment prefix ``CHAT_``)."""

from typing import Annotated, Any, ClassVar

from pydantic import Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from switchboard_shared.settings import ServiceSettings


class ChatSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="CHAT_", env_file=".env", extra="ignore", populate_by_name=True
    )
    service_name: ClassVar[str] = "chat"
    secret_fields: ClassVar[tuple[str, ...]] = ("internal_token",)

    port: int = Field(default=8001, description="Listen port")
    auto_migrate: bool = Field(default=True, description="Run Alembic migrations at start-up")

    # --- the provider chain and each provider's configuration (a tenant may override any of these) ---
    default_providers: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["extractive"],
        description="Provider chain for tenants without their own (comma-separated): "
        "extractive, openai, openai-compatible, anthropic, google, local",
    )
    provider_timeout_seconds: float = Field(
        default=20.0,
        description="Time a provider has to produce its first token, and the longest it may then go silent, "
        "before the next provider answers instead",
    )
    provider_total_timeout_seconds: float = Field(
        default=90.0,
        description="Longest the provider chain may take for one answer; keep it below the gateway's "
        "GATEWAY_STREAM_TIMEOUT_SECONDS so a cut-short turn still answers instead of timing out there",
    )
    provider_breaker_fail_max: int = Field(default=3, description="Failures that open a provider's breaker")
    provider_breaker_reset_seconds: float = Field(
        default=30.0, description="How long an open provider breaker skips that provider (s)"
    )
    max_output_tokens: int = Field(default=512, description="Largest answer a provider may generate")
    temperature: float = Field(default=0.2, description="Sampling temperature for LLM providers")
    openai_api_key: str | None = Field(default=None, description="OpenAI API key")
    openai_base_url: str | None = Field(
        default=None, description="OpenAI API base URL (None: api.openai.com)"
    )
    openai_model: str = Field(default="gpt-4o-mini", description="OpenAI model")
    openai_compatible_base_url: str | None = Field(
        default=None, description="Base URL of an OpenAI-compatible server (vLLM, llama.cpp, Ollama /v1)"
    )
    openai_compatible_api_key: str | None = Field(default=None, description="Its API key, if any")
    openai_compatible_model: str = Field(default="local-model", description="Model name sent to it")
    anthropic_api_key: str | None = Field(default=None, description="Anthropic API key")
    anthropic_base_url: str | None = Field(default=None, description="Anthropic API base URL")
    anthropic_model: str = Field(default="claude-3-5-haiku-latest", description="Anthropic model")
    google_api_key: str | None = Field(default=None, description="Google Gemini API key")
    google_base_url: str | None = Field(
        default=None, description="Gemini API base URL (a bare host[:port] means https)"
    )
    google_model: str = Field(default="gemini-2.0-flash", description="Gemini model")
    url_allowlist: list[str] = Field(
        default_factory=list,
        description="Hosts, host:port or CIDR ranges a tenant's own provider base URL may reach although "
        "they are loopback/private (the fleet's own provider URLs above are not checked)",
    )
    local_model_path: str | None = Field(
        default=None, description="GGUF file for the in-process llama.cpp provider (`local`)"
    )
    local_n_ctx: int = Field(default=2048, description="Context size of the local model")

    # --- the turn ---
    retrieval_top_k: int = Field(default=5, description="Passages retrieved per turn")
    retrieval_timeout_seconds: float = Field(default=5.0, description="Timeout of one retrieval search")
    integrations_timeout_seconds: float = Field(default=8.0, description="Timeout of one integrations call")
    min_support_score: float = Field(
        default=1.95,
        description="Extractive: least support a sentence needs to answer (its meaning and its section "
        "heading's in the knowledge base's embedding space, its share of the question's words, whether it "
        "holds the kind of fact asked for, and twice the cosine of the passage retrieval ranked first, "
        "weighed as fitted); below it the answer is a refusal",
    )
    cross_language_support_discount: float = Field(
        default=0.61,
        description="Extractive: how much less support a sentence in another language than the question needs "
        "(it shares no words with the question)",
    )
    lexical_min_support_score: float = Field(
        default=0.2,
        description="Extractive: least share of the question's words a sentence needs when retrieval cannot "
        "compare meanings",
    )
    history_window: int = Field(default=20, description="Messages kept in the recent-window cache")
    history_token_budget: int = Field(default=1200, description="Tokens of history put in a prompt")
    query_rewrite_timeout_seconds: float = Field(
        default=3.0,
        ge=0,
        description="How long the chain's language model may take to rewrite a follow-up as a standalone "
        "search query (0: always the offline query)",
    )
    window_cache_ttl_seconds: float = Field(default=3600.0, description="TTL of the recent-window cache")
    suggestion_retry_seconds: float = Field(
        default=15.0,
        gt=0,
        description="How often resolved conversations' suggested curated answers that could not reach retrieval "
        "are looked for, and the first wait after a failed attempt (doubling after each failure)",
    )
    suggestion_retry_max_seconds: float = Field(
        default=600.0, gt=0, description="The longest wait between two attempts to send suggestions"
    )
    lock_ttl_seconds: float = Field(default=180.0, description="Per-conversation lock TTL (a dead holder)")
    lock_wait_seconds: float = Field(
        default=150.0, description="How long a message waits for the turn before it is refused (409)"
    )
    heartbeat_seconds: float = Field(default=10.0, description="SSE heartbeat interval")
    escalate_after_unsupported: int = Field(
        default=2, description="Consecutive answers without knowledge-base support before a handoff"
    )

    @field_validator("default_providers", mode="before")
    @classmethod
    def _split_providers(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value
