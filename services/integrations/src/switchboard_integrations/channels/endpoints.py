"""Webhook routes (public through the gateway, verified here) for Telegram, WhatsApp, Zendesk and Jira,
and ``/deliver`` for sending a text to a customer on their messenger."""

from __future__ import annotations

import hashlib
from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from switchboard_integrations.channels import service
from switchboard_integrations.channels.dedup import claim_event, release_event
from switchboard_integrations.channels.render import OutboundText
from switchboard_integrations.channels.whatsapp import WhatsAppChannel
from switchboard_integrations.connectors.service import channel_for, ticket_connector_by_id
from switchboard_integrations.handoff.service import apply_ticket_event
from switchboard_integrations.metrics import WEBHOOKS
from switchboard_integrations.runtime import RuntimeDep
from switchboard_shared.contracts.chat import Channel
from switchboard_shared.contracts.integrations import DeliverMessage, DeliveryResult
from switchboard_shared.deps import TenantDep
from switchboard_shared.errors import AppError, error_responses

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/internal/v1", tags=["channels"])
WEBHOOK_ERRORS = error_responses(400, 401, 403, 404, 502, 503, 504)


@router.post("/channels/telegram/{bot_id}", responses=WEBHOOK_ERRORS)
async def telegram_webhook(bot_id: str, request: Request, runtime: RuntimeDep) -> dict[str, Any]:
    body = await request.body()
    outcome = await service.handle_webhook(
        runtime, channel=Channel.TELEGRAM, external_id=bot_id, headers=request.headers, body=body
    )
    return outcome.body()


@router.get(
    "/channels/whatsapp/{phone_number_id}", response_class=PlainTextResponse, responses=WEBHOOK_ERRORS
)
async def whatsapp_verification(
    phone_number_id: str, request: Request, runtime: RuntimeDep
) -> PlainTextResponse:
    plugin = await channel_for(runtime, channel=Channel.WHATSAPP.value, external_id=phone_number_id)
    assert isinstance(plugin, WhatsAppChannel)
    return PlainTextResponse(plugin.verify_subscription(request.query_params))


@router.post("/channels/whatsapp/{phone_number_id}", responses=WEBHOOK_ERRORS)
async def whatsapp_webhook(phone_number_id: str, request: Request, runtime: RuntimeDep) -> dict[str, Any]:
    body = await request.body()
    outcome = await service.handle_webhook(
        runtime, channel=Channel.WHATSAPP, external_id=phone_number_id, headers=request.headers, body=body
    )
    return outcome.body()


async def _ticket_webhook(kind: str, connector_id: str, request: Request, runtime: Any) -> dict[str, Any]:
    connector = await ticket_connector_by_id(runtime, kind=kind, connector_id=connector_id)
    body = await request.body()
    try:
        connector.verify_webhook(request.headers, body)
    except AppError:
        WEBHOOKS.labels(kind, "forged").inc()
        raise
    try:
        event = connector.parse_webhook(request.headers, service.parse_json(body))
    except AppError:
        WEBHOOKS.labels(kind, "malformed").inc()
        raise
    source = f"{kind}:{connector_id}"
    # A replayed signed body is the same body: its hash is claimed along with the event's own id, so a
    # changed unsigned header (or none) cannot make it new again.
    keys = [f"body:{hashlib.sha256(body).hexdigest()}", event.event_id]
    claimed: list[str] = []
    for key in keys:
        if not await claim_event(
            runtime, source=source, event_key=key, tenant_id=connector.context.tenant_id
        ):
            WEBHOOKS.labels(kind, "duplicate").inc()
            return {"ok": True, "duplicate": True}
        claimed.append(key)
    try:
        outcome = await apply_ticket_event(runtime, connector_id=connector_id, event=event)
    except BaseException:
        for key in claimed:
            await release_event(runtime, source=source, event_key=key)
        raise
    WEBHOOKS.labels(kind, "processed").inc()
    return {"ok": True, "duplicate": False, "outcome": outcome}


@router.post("/channels/zendesk/{connector_id}", responses=WEBHOOK_ERRORS)
async def zendesk_webhook(connector_id: str, request: Request, runtime: RuntimeDep) -> dict[str, Any]:
    return await _ticket_webhook("zendesk", connector_id, request, runtime)


@router.post("/channels/jira/{connector_id}", responses=WEBHOOK_ERRORS)
async def jira_webhook(connector_id: str, request: Request, runtime: RuntimeDep) -> dict[str, Any]:
    return await _ticket_webhook("jira", connector_id, request, runtime)


@router.post("/deliver", response_model=DeliveryResult, responses=error_responses(400, 404, 409, 502, 503))
async def deliver_message(body: DeliverMessage, tenant_id: TenantDep, runtime: RuntimeDep) -> DeliveryResult:
    """Send a plain text to the customer on their messenger, once per idempotency key (again after a failure)."""
    delivery = await service.deliver(
        runtime,
        tenant_id=tenant_id,
        channel=body.channel,
        external_key=body.external_key,
        message=OutboundText(text=body.text),
        idempotency_key=body.idempotency_key,
    )
    return delivery.result
