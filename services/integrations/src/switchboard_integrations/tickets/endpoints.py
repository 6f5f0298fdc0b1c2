"""Ticket routes: idempotent creation in the tenant's ticketing system, listing, one ticket's status."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from switchboard_integrations.runtime import RuntimeDep
from switchboard_integrations.tickets import service
from switchboard_shared.contracts.common import Page
from switchboard_shared.contracts.integrations import CreateTicket, Ticket
from switchboard_shared.deps import PageOffset, TenantDep
from switchboard_shared.errors import error_responses

router = APIRouter(prefix="/internal/v1/tickets", tags=["tickets"])


@router.post(
    "",
    response_model=Ticket,
    status_code=201,
    responses={
        200: {"description": "Already created under this idempotency key"},
        **error_responses(404, 409, 502, 503, 504),
    },
)
async def create_ticket(
    body: CreateTicket, tenant_id: TenantDep, runtime: RuntimeDep, response: Response
) -> Ticket:
    ticket, created = await service.create_ticket(runtime, tenant_id=tenant_id, request=body)
    if not created:
        response.status_code = 200
    return ticket


@router.get("", response_model=Page[Ticket])
async def list_tickets(
    tenant_id: TenantDep,
    runtime: RuntimeDep,
    conversation_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: PageOffset = 0,
) -> Page[Ticket]:
    return await service.list_tickets(
        runtime, tenant_id=tenant_id, conversation_id=conversation_id, limit=limit, offset=offset
    )


@router.get("/{ticket_id}", response_model=Ticket, responses=error_responses(404, 502, 503))
async def get_ticket(
    ticket_id: str, tenant_id: TenantDep, runtime: RuntimeDep, refresh: bool = False
) -> Ticket:
    """``?refresh=true`` reads the current status from Zendesk / Jira."""
    return await service.get_ticket(runtime, tenant_id=tenant_id, ticket_id=ticket_id, refresh=refresh)
