"""Request and response models of the connector and channel-binding admin routes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from switchboard_shared.contracts.chat import Channel
from switchboard_shared.contracts.common import Contract

ConnectorKind = Literal["crm_rest", "zendesk", "jira"]


class ConnectorCreate(Contract):
    kind: ConnectorKind
    name: str = Field(default="", max_length=200)
    enabled: bool = True
    settings: dict[str, Any] = Field(default_factory=dict)
    secrets: dict[str, str] = Field(default_factory=dict)


class ConnectorUpdate(Contract):
    name: str | None = Field(default=None, max_length=200)
    enabled: bool | None = None
    settings: dict[str, Any] | None = Field(default=None, description="Replaces the settings when given")
    secrets: dict[str, str | None] | None = Field(
        default=None, description="Merged: a key sets a secret, null removes it, absent keeps it"
    )


class ConnectorOut(Contract):
    id: str
    tenant_id: str
    kind: str
    name: str
    enabled: bool
    settings: dict[str, Any]
    secrets: dict[str, str] = Field(description="Masked: never returned in full")
    builtin: bool = Field(default=False, description="Configured by the service (the demo CRM)")
    webhook_path: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class BindingCreate(Contract):
    channel: Literal[Channel.TELEGRAM, Channel.WHATSAPP]
    enabled: bool = True
    settings: dict[str, Any] = Field(default_factory=dict)
    secrets: dict[str, str] = Field(default_factory=dict)


class BindingOut(Contract):
    id: str
    tenant_id: str
    channel: Channel
    external_id: str
    enabled: bool
    settings: dict[str, Any]
    secrets: dict[str, str] = Field(description="Masked: never returned in full")
    webhook_path: str
    created_at: datetime
    updated_at: datetime
