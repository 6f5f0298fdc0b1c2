"""Settings of the integrations service (environment prefix ``INTEGRATIONS_``)."""

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from switchboard_shared.settings import ServiceSettings


class IntegrationsSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="INTEGRATIONS_", env_file=".env", extra="ignore", populate_by_name=True
    )
    service_name: ClassVar[str] = "integrations"

    port: int = Field(default=8003, description="Listen port")
    auto_migrate: bool = Field(default=True, description="Run Alembic migrations at start-up")

    demo_tenant_id: str = Field(default="demo", description="Tenant wired to the demo CRM")
    demo_crm_url: str | None = Field(
        default=None, description="Base URL of the demo CRM; when set, the demo tenant gets a CRM connector"
    )
    demo_crm_token: str = Field(default="demo-crm-token", description="Bearer token the demo CRM expects")

    url_allowlist: list[str] = Field(
        default_factory=list,
        description="Hosts, host:port or CIDR ranges connector base URLs may reach although they are "
        "loopback/private (the demo CRM's address is always allowed)",
    )

    telegram_api_base: str = Field(default="https://api.telegram.org", description="Telegram Bot API base")
    whatsapp_api_base: str = Field(default="https://graph.facebook.com", description="Graph API base URL")
    whatsapp_api_version: str = Field(default="v21.0", description="Graph API version in the path")

    config_cache_ttl: float = Field(
        default=5.0, description="Seconds connector configs and bindings are cached in-process"
    )
    crm_cache_ttl: float = Field(default=30.0, description="Seconds a CRM answer is cached per tenant")
    connector_timeout: float = Field(default=10.0, description="Default read timeout for SaaS calls (s)")
    channel_send_attempts: int = Field(default=4, description="Attempts to send one channel message")
    channel_send_backoff: float = Field(default=0.5, description="First retry delay of a channel send (s)")
    webhook_dedup_ttl: float = Field(default=7 * 86_400, description="How long webhook ids are remembered")

    system_texts: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="Overrides of the channel's own replies as {kind: {language: text}}; kinds: start, "
        "unsupported, edited; languages built in: en, ru",
    )
    delivery_retry_seconds: float = Field(
        default=2.0, description="How often undelivered replies are looked for and retried (0: never)"
    )
    delivery_retry_initial: float = Field(default=5.0, description="First background retry delay (s)")
    delivery_retry_max: float = Field(default=300.0, description="Longest background retry delay (s)")
    delivery_retry_window: float = Field(
        default=3600.0,
        description="How long an undelivered reply keeps being retried before it is failed (s)",
    )
