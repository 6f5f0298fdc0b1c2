"""Prometheus metrics of the integrations service: channel sends, webhooks, tickets, CRM lookups."""

from prometheus_client import Counter

CHANNEL_SENDS = Counter(
    "switchboard_integrations_channel_sends_total",
    "Messenger send attempts by outcome (sent, retry, failed)",
    ["channel", "outcome"],
)
WEBHOOKS = Counter(
    "switchboard_integrations_webhooks_total",
    "Webhook events by outcome (processed, duplicate, forged, malformed, ignored)",
    ["source", "outcome"],
)
TICKETS = Counter(
    "switchboard_integrations_tickets_total", "Ticket creations by outcome", ["system", "outcome"]
)
CRM_LOOKUPS = Counter("switchboard_integrations_crm_lookups_total", "CRM lookups by outcome", ["outcome"])
