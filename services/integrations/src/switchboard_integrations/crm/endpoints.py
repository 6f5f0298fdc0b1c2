"""CRM routes chat's tools call: customer lookup, order lookup, a customer's orders."""

from __future__ import annotations

from fastapi import APIRouter

from switchboard_integrations.crm import service
from switchboard_integrations.runtime import RuntimeDep
from switchboard_shared.contracts.integrations import Customer, CustomerLookup, Order, OrderLookup
from switchboard_shared.deps import EndUserDep, TenantDep
from switchboard_shared.errors import error_responses

router = APIRouter(prefix="/internal/v1/crm", tags=["crm"])
ERRORS = error_responses(400, 403, 404, 502, 503, 504)


@router.post("/customers/lookup", response_model=Customer, responses=ERRORS)
async def lookup_customer(
    body: CustomerLookup, tenant_id: TenantDep, end_user: EndUserDep, runtime: RuntimeDep
) -> Customer:
    service.require_verified(end_user)
    return await service.find_customer(runtime, tenant_id=tenant_id, lookup=body)


@router.post("/orders/lookup", response_model=Order, responses=ERRORS)
async def lookup_order(
    body: OrderLookup, tenant_id: TenantDep, end_user: EndUserDep, runtime: RuntimeDep
) -> Order:
    service.require_verified(end_user)
    return await service.find_order(runtime, tenant_id=tenant_id, lookup=body)


@router.get("/customers/{customer_id}/orders", response_model=list[Order], responses=ERRORS)
async def list_customer_orders(
    customer_id: str, tenant_id: TenantDep, end_user: EndUserDep, runtime: RuntimeDep
) -> list[Order]:
    service.require_verified(end_user)
    return await service.customer_orders(runtime, tenant_id=tenant_id, customer_id=customer_id)
