"""Request and response models of the tenant admin API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

TENANT_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{1,62}[a-z0-9]$"
BUDGET_DOC = "Per UTC day; null uses the gateway default, -1 means unlimited, 0 stops all messages"


class TenantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=TENANT_ID_PATTERN, description="Slug: lower-case letters, digits, - and _")
    name: str = Field(min_length=1, max_length=200)
    daily_message_budget: int | None = Field(default=None, ge=-1, description=BUDGET_DOC)
    daily_token_budget: int | None = Field(default=None, ge=-1, description=BUDGET_DOC)
    end_user_requests_per_minute: int | None = Field(default=None, ge=0, description="0 disables the limit")


class TenantUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    disabled: bool | None = Field(default=None, description="Kill switch: refuse every request of the tenant")
    daily_message_budget: int | None = Field(default=None, ge=-1, description=BUDGET_DOC)
    daily_token_budget: int | None = Field(default=None, ge=-1, description=BUDGET_DOC)
    end_user_requests_per_minute: int | None = Field(default=None, ge=0)


class TenantOut(BaseModel):
    id: str
    name: str
    disabled: bool
    daily_message_budget: int | None
    daily_token_budget: int | None
    end_user_requests_per_minute: int | None
    created_at: datetime
    updated_at: datetime


class TenantCreated(TenantOut):
    identity_secret: str = Field(
        description="HMAC-SHA256 key for widget identity tokens; keep it server-side"
    )


class TenantPage(BaseModel):
    items: list[TenantOut]
    total: int
    limit: int
    offset: int


class IdentitySecret(BaseModel):
    identity_secret: str


class IdentityTokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(min_length=1, max_length=200)
    ttl_seconds: int = Field(default=3600, ge=60, le=30 * 86_400)


class IdentityToken(BaseModel):
    token: str = Field(description="v1.<payload>.<signature>; send it as X-End-User-Token")
    user_id: str
    expires_at: int


class UsageOut(BaseModel):
    tenant_id: str
    day: str = Field(description="UTC day, YYYYMMDD")
    messages: int
    tokens: int = Field(description="Estimated tokens (characters / 4) of messages and replies")
    message_budget: int
    token_budget: int
