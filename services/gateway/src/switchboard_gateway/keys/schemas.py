"""Request and response models of the API key admin endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from switchboard_gateway.auth.origins import normalise_pattern
from switchboard_gateway.keys.secrets import KeyScope


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scope: KeyScope
    name: str = Field(default="", max_length=200)
    allowed_origins: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="Widget keys: origins allowed to use the key (https://shop.example, "
        "http://localhost:*, https://*.example.com); at least one is required",
    )
    requests_per_minute: int | None = Field(
        default=None, ge=0, description="null: the scope's default; 0 disables the limit"
    )
    expires_at: datetime | None = None

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        return sorted({normalise_pattern(item) for item in value})


class KeyOut(BaseModel):
    id: str
    tenant_id: str
    scope: KeyScope
    name: str
    prefix: str = Field(description="The first characters of the key, to recognise it")
    allowed_origins: list[str]
    requests_per_minute: int | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class KeyCreated(KeyOut):
    key: str = Field(description="The key itself; shown only once")
