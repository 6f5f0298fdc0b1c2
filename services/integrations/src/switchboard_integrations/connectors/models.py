"""Tables of per-tenant connector configs (CRM, ticketing) and messenger channel bindings."""

from typing import Any

from sqlalchemy import JSON, Boolean, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from switchboard_integrations.db import Base, TimestampMixin, new_id


class ConnectorConfigRow(TimestampMixin, Base):
    """One external system a tenant connects: a CRM or a ticketing system (one per kind)."""

    __tablename__ = "connector_configs"
    __table_args__ = (UniqueConstraint("tenant_id", "kind", name="uq_connector_configs_tenant_kind"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    secrets: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)


class ChannelBindingRow(TimestampMixin, Base):
    """A Telegram bot or a WhatsApp phone number bound to one tenant, with its webhook secrets."""

    __tablename__ = "channel_bindings"
    __table_args__ = (
        UniqueConstraint("channel", "external_id", name="uq_channel_bindings_channel_external_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(64), doc="Telegram bot id / WhatsApp phone number id")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    secrets: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
