"""Imports every table of the integrations service so Alembic and tests see the whole metadata."""

from switchboard_integrations.channels.models import ChannelDeliveryRow, WebhookReceiptRow
from switchboard_integrations.connectors.models import ChannelBindingRow, ConnectorConfigRow
from switchboard_integrations.db import Base
from switchboard_integrations.handoff.models import HandoffRow
from switchboard_integrations.tickets.models import TicketRow

__all__ = [
    "Base",
    "ChannelBindingRow",
    "ChannelDeliveryRow",
    "ConnectorConfigRow",
    "HandoffRow",
    "TicketRow",
    "WebhookReceiptRow",
]
