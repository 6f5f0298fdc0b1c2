"""CRM lookups for chat's tools: the tenant's CRM connector, with personal data only for verified users."""

from __future__ import annotations

from switchboard_integrations.connectors.service import crm_for_tenant
from switchboard_integrations.metrics import CRM_LOOKUPS
from switchboard_integrations.runtime import Runtime
from switchboard_shared.contracts.integrations import Customer, CustomerLookup, Order, OrderLookup
from switchboard_shared.deps import EndUser
from switchboard_shared.errors import AppError, ErrorCode


def require_verified(end_user: EndUser) -> None:
    """Calls on behalf of a widget user (X-End-User-ID set) need a verified identity for personal data."""
    if end_user.id is not None and not end_user.verified:
        raise AppError(ErrorCode.FORBIDDEN, "Personal data needs a verified end-user identity.")


async def find_customer(runtime: Runtime, *, tenant_id: str, lookup: CustomerLookup) -> Customer:
    crm = await crm_for_tenant(runtime, tenant_id=tenant_id)
    try:
        customer = await crm.find_customer(lookup)
    except AppError as exc:
        CRM_LOOKUPS.labels(exc.code.value).inc()
        raise
    CRM_LOOKUPS.labels("ok").inc()
    return customer


async def find_order(runtime: Runtime, *, tenant_id: str, lookup: OrderLookup) -> Order:
    crm = await crm_for_tenant(runtime, tenant_id=tenant_id)
    try:
        order = await crm.find_order(lookup.order_number.strip())
    except AppError as exc:
        CRM_LOOKUPS.labels(exc.code.value).inc()
        raise
    if lookup.customer_id is not None and order.customer_id != lookup.customer_id:
        CRM_LOOKUPS.labels("not_found").inc()
        # The same answer as a missing order: never reveal another customer's order exists.
        raise AppError(ErrorCode.NOT_FOUND, "No order with that number.")
    CRM_LOOKUPS.labels("ok").inc()
    return order


async def customer_orders(runtime: Runtime, *, tenant_id: str, customer_id: str) -> list[Order]:
    crm = await crm_for_tenant(runtime, tenant_id=tenant_id)
    try:
        orders = await crm.customer_orders(customer_id)
    except AppError as exc:
        CRM_LOOKUPS.labels(exc.code.value).inc()
        raise
    CRM_LOOKUPS.labels("ok").inc()
    return orders
