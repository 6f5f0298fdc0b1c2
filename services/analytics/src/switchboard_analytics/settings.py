"""Settings of the analytics service (environment prefix ``ANALYTICS_``)."""

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from switchboard_shared.settings import ServiceSettings

DEV_PSEUDONYM_SALT = "dev-analytics-salt-change-me"


class AnalyticsSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="ANALYTICS_", env_file=".env", extra="ignore", populate_by_name=True
    )
    service_name: ClassVar[str] = "analytics"
    secret_fields: ClassVar[tuple[str, ...]] = ("internal_token", "pseudonym_salt")

    port: int = Field(default=8004, description="Listen port")
    auto_migrate: bool = Field(default=True, description="Run Alembic migrations at start-up")
    ingest_max_body_bytes: int = Field(
        default=4 * 1_048_576, description="Largest event batch body accepted (bytes)"
    )
    max_event_properties_bytes: int = Field(
        default=16_384, description="Largest serialised `properties` of one event (bytes)"
    )
    max_future_skew_seconds: float = Field(
        default=300.0, description="Events dated further in the future than this are rejected"
    )
    max_event_age_days: int = Field(default=400, description="Events older than this are rejected")
    recontact_days: int = Field(
        default=3, ge=0, le=90, description="Default re-contact window (days) of the resolution metric"
    )
    max_report_days: int = Field(default=400, description="Longest report range (days)")
    pseudonym_salt: str = Field(
        default=DEV_PSEUDONYM_SALT, description="HMAC key that pseudonymises end-user ids sent to PostHog"
    )
    posthog_api_key: str | None = Field(
        default=None, description="PostHog project API key; unset disables the PostHog export"
    )
    posthog_host: str = Field(default="https://us.i.posthog.com", description="PostHog ingestion host")
    posthog_batch_size: int = Field(default=500, ge=1, le=5000, description="Events per export round")
    posthog_interval_seconds: float = Field(default=5.0, gt=0, description="Pause between export rounds")
    posthog_timeout_seconds: float = Field(default=10.0, gt=0, description="PostHog request timeout (s)")
    posthog_settle_seconds: float = Field(
        default=10.0,
        ge=0,
        description="Export only events received this long ago (a later-committing lower id is not skipped)",
    )
    posthog_lease_seconds: float = Field(
        default=60.0, gt=0, description="How long one replica owns the export cursor"
    )
