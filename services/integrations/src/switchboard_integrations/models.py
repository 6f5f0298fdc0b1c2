"""Imports every table of the integrations service so Alembic and tests see the whole metadata."""

from switchboard_integrations.channels.models import ChannelDelivery, WebhookReceipt
from switchboard_integrations.connectors.models import ChannelBinding, ConnectorConfig
from switchboard_integrations.db import Base
from switchboard_integrations.handoff.models import HandoffRecord
from switchboard_integrations.tickets.models import TicketRecord

__all__ = [
    "Base",
    "ChannelBinding",
    "ChannelDelivery",
    "ConnectorConfig",
    "HandoffRecord",
    "TicketRecord",
    "WebhookReceipt",
]
