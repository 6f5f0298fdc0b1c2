"""The demo tenant's built-in CRM connector: a ``crm_rest`` config (not stored) whose endpoints and field
mapping match the demo CRM's JSON (``switchboard_demo_crm``, a separate server), used when
``INTEGRATIONS_DEMO_CRM_URL`` is set."""

from __future__ import annotations

from datetime import UTC, datetime

from switchboard_integrations.connectors.models import ConnectorConfigRow
from switchboard_integrations.settings import IntegrationsSettings

DEMO_CONNECTOR_ID = "demo-crm"

DEMO_CRM_MAPPING: dict[str, object] = {
    "auth": "bearer",
    "timeout_seconds": 5.0,
    "envelope": "data",
    "endpoints": {
        "customer_by_id": "/api/customers/{id}",
        "customer_by_email": "/api/customers?email={email}",
        "customer_by_phone": "/api/customers?phone={phone}",
        "customer_orders": "/api/customers/{id}/orders",
        "order_by_number": "/api/orders/{number}",
    },
    "customer_fields": {
        "id": "customer_id",
        "name": "full_name",
        "email": "contacts.email",
        "phone": "contacts.phone",
        "balance": "account.balance",
        "currency": "account.currency",
    },
    "customer_extra": {"tier": "tier", "city": "city"},
    "order_fields": {
        "number": "order_no",
        "status": "state",
        "customer_id": "customer_id",
        "items": "lines",
        "total": "amount.total",
        "currency": "amount.currency",
        "tracking_number": "shipment.tracking_number",
        "tracking_url": "shipment.tracking_url",
        "created_at": "created",
        "updated_at": "updated",
    },
    "item_fields": {"name": "title", "quantity": "qty", "price": "unit_price"},
}


def demo_connector_config(settings: IntegrationsSettings, tenant_id: str) -> ConnectorConfigRow | None:
    if not settings.demo_crm_url or tenant_id != settings.demo_tenant_id:
        return None
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return ConnectorConfigRow(
        id=DEMO_CONNECTOR_ID,
        tenant_id=tenant_id,
        kind="crm_rest",
        name="Demo CRM",
        enabled=True,
        settings={**DEMO_CRM_MAPPING, "base_url": settings.demo_crm_url},
        secrets={"token": settings.demo_crm_token},
        created_at=now,
        updated_at=now,
    )
