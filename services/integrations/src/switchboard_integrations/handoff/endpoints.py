"""The handoff queue's routes: start, list, one handoff, claim, reply (and retry a reply), return to bot,
resolve, relay."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from switchboard_integrations.handoff import service
from switchboard_integrations.runtime import RuntimeDep
from switchboard_shared.contracts.common import Page
from switchboard_shared.contracts.integrations import (
    Handoff,
    HandoffAction,
    HandoffDetail,
    HandoffReply,
    HandoffReplyResult,
    HandoffStatus,
    OperatorReplyState,
    RelayCustomerMessage,
    StartHandoff,
)
from switchboard_shared.deps import PageOffset, TenantDep
from switchboard_shared.errors import error_responses

router = APIRouter(prefix="/internal/v1/handoffs", tags=["handoffs"])
ACTION_ERRORS = error_responses(404, 409, 502, 503, 504)


@router.post("", response_model=Handoff, status_code=201)
async def start_handoff(body: StartHandoff, tenant_id: TenantDep, runtime: RuntimeDep) -> Handoff:
    return await service.start(runtime, tenant_id=tenant_id, request=body)


@router.get("", response_model=Page[HandoffDetail])
async def list_handoffs(
    tenant_id: TenantDep,
    runtime: RuntimeDep,
    status: Annotated[list[HandoffStatus] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: PageOffset = 0,
) -> Page[HandoffDetail]:
    """Open handoffs (waiting and claimed) by default, oldest first, with transcript and waiting time."""
    statuses = status or [HandoffStatus.WAITING, HandoffStatus.CLAIMED]
    return await service.list_queue(
        runtime, tenant_id=tenant_id, statuses=statuses, limit=limit, offset=offset
    )


@router.post("/relay", response_model=Handoff, responses=error_responses(404))
async def relay_customer_message(
    body: RelayCustomerMessage, tenant_id: TenantDep, runtime: RuntimeDep
) -> Handoff:
    return await service.relay(runtime, tenant_id=tenant_id, body=body)


@router.get("/{handoff_id}", response_model=HandoffDetail, responses=error_responses(404))
async def get_handoff(handoff_id: str, tenant_id: TenantDep, runtime: RuntimeDep) -> HandoffDetail:
    return await service.get(runtime, tenant_id=tenant_id, handoff_id=handoff_id)


def _operator_action(path: str, name: str, action: service.OperatorAction) -> None:
    """A route that changes the handoff's owner or status for an operator (``HandoffAction`` in, the
    handoff out); ``name`` is the route's operation id."""

    async def endpoint(
        handoff_id: str, body: HandoffAction, tenant_id: TenantDep, runtime: RuntimeDep
    ) -> Handoff:
        return await action(runtime, tenant_id=tenant_id, handoff_id=handoff_id, action=body)

    router.add_api_route(
        path, endpoint, methods=["POST"], name=name, response_model=Handoff, responses=ACTION_ERRORS
    )


_operator_action("/{handoff_id}/claim", "claim_handoff", service.claim)
_operator_action("/{handoff_id}/return", "return_to_bot", service.return_to_bot)
_operator_action("/{handoff_id}/resolve", "resolve_handoff", service.resolve)


@router.post("/{handoff_id}/reply", response_model=HandoffReplyResult, responses=ACTION_ERRORS)
async def reply_to_customer(
    handoff_id: str, body: HandoffReply, tenant_id: TenantDep, runtime: RuntimeDep
) -> HandoffReplyResult:
    return await service.reply(runtime, tenant_id=tenant_id, handoff_id=handoff_id, body=body)


@router.post(
    "/{handoff_id}/replies/{reply_id}/retry", response_model=OperatorReplyState, responses=ACTION_ERRORS
)
async def retry_reply(
    handoff_id: str, reply_id: str, tenant_id: TenantDep, runtime: RuntimeDep
) -> OperatorReplyState:
    """Send a pending or failed operator reply again now, without retyping it."""
    return await service.retry_reply(runtime, tenant_id=tenant_id, handoff_id=handoff_id, reply_id=reply_id)
