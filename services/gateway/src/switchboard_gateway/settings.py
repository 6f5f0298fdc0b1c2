"""Settings of the gateway service (environment prefix ``GATEWAY_``)."""

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from switchboard_shared.settings import DEV_ADMIN_TOKEN, ServiceSettings

__all__ = ["DEV_ADMIN_TOKEN", "STATIC_DIR", "GatewaySettings"]
STATIC_DIR = Path(__file__).parent / "static"


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_", env_file=".env", extra="ignore", populate_by_name=True
    )
    service_name: ClassVar[str] = "gateway"
    secret_fields: ClassVar[tuple[str, ...]] = ("internal_token", "admin_token")

    port: int = Field(default=8000, description="Listen port")
    auto_migrate: bool = Field(default=True, description="Run Alembic migrations at start-up")
    admin_token: str = Field(
        default=DEV_ADMIN_TOKEN,
        description="Fleet operator token (GATEWAY_ADMIN_TOKEN): creates tenants, manages every tenant",
    )

    metrics_token: str | None = Field(
        default=None,
        description="Bearer token Prometheus presents for /metrics (the operator token works too); the "
        "gateway's port is public, so its /metrics answers no one else",
    )

    key_cache_seconds: float = Field(default=10.0, description="How long a looked-up API key is cached")
    key_negative_cache_seconds: float = Field(default=2.0, description="How long an unknown key is cached")

    widget_key_requests_per_minute: int = Field(default=600, description="Default limit per widget key")
    server_key_requests_per_minute: int = Field(default=1200, description="Default limit per server key")
    admin_key_requests_per_minute: int = Field(default=600, description="Default limit per admin key")
    end_user_requests_per_minute: int = Field(default=120, description="Default limit per end user")
    anonymous_requests_per_minute_per_address: int = Field(
        default=240,
        ge=0,
        description="Limit per widget key and client address of anonymous widget traffic (X-Anonymous-ID): a "
        "new anonymous id per request does not escape it; 0 disables it. Behind a proxy, set "
        "SWITCHBOARD_FORWARDED_ALLOW_IPS so the client's address is the one the proxy saw",
    )
    daily_message_budget: int = Field(default=10_000, description="Default messages per tenant per UTC day")
    daily_token_budget: int = Field(
        default=5_000_000, description="Default (estimated) tokens per tenant per UTC day"
    )

    upstream_timeout_seconds: float = Field(default=30.0, description="Read timeout of proxied calls")
    stream_timeout_seconds: float = Field(
        default=120.0, description="Read timeout of message turns (between SSE chunks or until the JSON)"
    )
    upload_timeout_seconds: float = Field(default=300.0, description="Read timeout of file uploads/exports")
    proxy_client: Literal["h1", "aiohttp"] = Field(
        default="h1",
        description="Proxy hot-path client: the lean HTTP/1.1 pool (h1) or aiohttp (for https upstreams)",
    )
    upstream_pool_size: int = Field(default=256, description="Keep-alive connections per upstream")
    message_body_bytes: int = Field(default=65_536, description="Largest body of a message post")
    upload_body_bytes: int = Field(default=26_214_400, description="Largest knowledge-base upload")

    openapi_cache_seconds: float = Field(default=60.0, description="How long the merged OpenAPI is cached")
    hsts: bool = Field(default=False, description="Send Strict-Transport-Security (behind TLS)")
    static_dir: Path | None = Field(
        default=None, description="Widget and demo page assets; unset: the ones shipped in the package"
    )

    demo_tenant_id: str = Field(default="demo", description="Tenant of the demo page's sign-in")
    demo_customer_id: str | None = Field(
        default="C-1001",
        description="Demo CRM customer the demo page signs in as (POST /demo/identity-token; never in "
        "production); empty: no demo sign-in",
    )

    def effective_static_dir(self) -> Path:
        return self.static_dir or STATIC_DIR
