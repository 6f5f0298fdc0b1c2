"""The settings base every service extends: fleet-wide values, development defaults that refuse production."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_INTERNAL_TOKEN = "dev-internal-token-change-me"
# The gateway's operator token in development (GATEWAY_ADMIN_TOKEN); refused anywhere else.
DEV_ADMIN_TOKEN = "dev-admin-token-change-me"


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


def fleet_field(default: Any, description: str, name: str) -> Any:
    """A setting shared by the whole fleet, read from ``SWITCHBOARD_<NAME>`` whatever the service prefix."""
    env = f"SWITCHBOARD_{name.upper()}"
    return Field(default=default, description=description, validation_alias=AliasChoices(env, name))


class ServiceSettings(BaseSettings):
    """Base for every service's settings: subclasses set ``env_prefix`` and add their own fields."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )
    service_name: ClassVar[str] = "service"
    secret_fields: ClassVar[tuple[str, ...]] = ("internal_token",)

    environment: Environment = fleet_field(
        Environment.DEVELOPMENT, "development, test or production", "environment"
    )
    internal_token: str = fleet_field(
        DEV_INTERNAL_TOKEN, "Shared token for /internal/v1 routes between services", "internal_token"
    )
    redis_url: str | None = fleet_field(
        None, "Redis URL; unset means in-process stores (embedded mode)", "redis_url"
    )
    log_level: str = fleet_field("INFO", "Log level", "log_level")
    log_json: bool = fleet_field(True, "JSON logs (false: console renderer)", "log_json")
    gateway_url: str = fleet_field("http://127.0.0.1:8000", "Base URL of the gateway", "gateway_url")
    chat_url: str = fleet_field("http://127.0.0.1:8001", "Base URL of the chat service", "chat_url")
    retrieval_url: str = fleet_field(
        "http://127.0.0.1:8002", "Base URL of the retrieval service", "retrieval_url"
    )
    integrations_url: str = fleet_field(
        "http://127.0.0.1:8003", "Base URL of the integrations service", "integrations_url"
    )
    analytics_url: str = fleet_field(
        "http://127.0.0.1:8004", "Base URL of the analytics service", "analytics_url"
    )
    data_dir: str = fleet_field("./data", "Directory for embedded SQLite files and Chroma", "data_dir")
    forwarded_allow_ips: str | None = fleet_field(
        None,
        "Proxies (comma-separated addresses or CIDRs, '*' for any) whose X-Forwarded-For gives the client's "
        "address; unset: the peer's address is the client's",
        "forwarded_allow_ips",
    )

    keep_alive_seconds: int = fleet_field(
        30,
        "Seconds an idle HTTP connection to this service stays open. Keep it above the idle limit of every "
        "client in front (the gateway's pool: 4 s, the services' clients: 10 s, a load balancer's idle "
        "timeout), or a request sent on a connection being closed fails",
        "keep_alive_seconds",
    )

    host: str = Field(default="127.0.0.1", description="Bind address")
    port: int = Field(default=8000, description="Listen port")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy async URL; unset means SQLite under data_dir"
    )
    max_body_bytes: int = Field(default=1_048_576, description="Largest request body accepted (bytes)")
    http_connect_timeout: float = Field(default=2.0, description="Outbound connect timeout (s)")
    http_read_timeout: float = Field(default=30.0, description="Outbound read timeout (s)")
    http_retries: int = Field(default=2, description="Retries for idempotent outbound calls")
    breaker_fail_max: int = Field(default=5, description="Consecutive failures that open a breaker")
    breaker_reset_seconds: float = Field(default=15.0, description="How long a breaker stays open (s)")

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> ServiceSettings:
        # Tests and every deployment set real secrets: a default one is accepted in development only.
        if self.environment != Environment.DEVELOPMENT:
            for name in self.secret_fields:
                value = getattr(self, name)
                if not value or "change-me" in str(value):
                    raise ValueError(f"{name} must be set to a real secret outside development")
        return self

    def sqlite_url(self) -> str:
        return f"sqlite+aiosqlite:///{self.data_dir}/{self.service_name}.db"

    def effective_database_url(self) -> str:
        return self.database_url or self.sqlite_url()
