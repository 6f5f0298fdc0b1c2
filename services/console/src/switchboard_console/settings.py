"""Settings of the operator console (environment prefix ``CONSOLE_``)."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConsoleSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CONSOLE_", env_file=".env", extra="ignore", populate_by_name=True
    )

    gateway_url: str = Field(
        default="http://127.0.0.1:8000",
        description="The gateway's base URL (CONSOLE_GATEWAY_URL, else SWITCHBOARD_GATEWAY_URL)",
        validation_alias=AliasChoices("CONSOLE_GATEWAY_URL", "SWITCHBOARD_GATEWAY_URL", "gateway_url"),
    )
    admin_key: SecretStr | None = Field(
        default=None, description="A tenant's admin key (ak_…); unset: the console asks for one at sign-in"
    )
    operator_id: str = Field(default="console-operator", description="Operator id on handoff actions")
    timeout_seconds: float = Field(default=15.0, gt=0, description="Timeout of each gateway call")
    turn_timeout_seconds: float = Field(default=120.0, gt=0, description="Read timeout of a streamed answer")
    refresh_seconds: float = Field(default=5.0, ge=1, description="Auto-refresh of the handoff queue")
