"""Contracts of the integrations service's internal API (CRM, tickets, handoff, channel delivery), and its
typed client (``IntegrationsClient``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from switchboard_shared.contracts.chat import Channel, EndUserProfile, Role
from switchboard_shared.contracts.common import Contract

if TYPE_CHECKING:
    from switchboard_shared.http_client import Downstream


class Customer(Contract):
    id: str
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    balance: float | None = None
    currency: str | None = None
    extra: dict[str, str] = Field(default_factory=dict)


class OrderItem(Contract):
    name: str
    quantity: int = 1
    price: float | None = None


class Order(Contract):
    number: str
    status: str
    customer_id: str | None = None
    items: list[OrderItem] = Field(default_factory=list)
    total: float | None = None
    currency: str | None = None
    tracking_number: str | None = None
    tracking_url: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class CustomerLookup(Contract):
    by: Literal["id", "email", "phone"]
    value: str = Field(min_length=1, max_length=200)


class OrderLookup(Contract):
    order_number: str = Field(min_length=1, max_length=100)
    customer_id: str | None = Field(default=None, description="When set, the order must belong to them")


class TranscriptLine(Contract):
    role: Role
    text: str
    at: datetime | None = None


class TicketSystem(StrEnum):
    ZENDESK = "zendesk"
    JIRA = "jira"


class Requester(Contract):
    name: str | None = None
    email: str | None = None
    end_user_id: str | None = None


class CreateTicket(Contract):
    conversation_id: str | None = None
    subject: str = Field(min_length=1, max_length=300)
    transcript: list[TranscriptLine] = Field(default_factory=list)
    description: str | None = Field(default=None, max_length=20000)
    requester: Requester = Field(default_factory=Requester)
    priority: Literal["low", "normal", "high", "urgent"] = "normal"
    tags: list[str] = Field(default_factory=list)
    idempotency_key: str = Field(min_length=1, max_length=200)
    system: TicketSystem | None = Field(default=None, description="None: the tenant's configured system")


class Ticket(Contract):
    id: str
    tenant_id: str
    system: TicketSystem
    external_id: str
    url: str | None = None
    status: str
    conversation_id: str | None = None
    created_at: datetime


class HandoffStatus(StrEnum):
    WAITING = "waiting"
    CLAIMED = "claimed"
    RETURNED = "returned"
    RESOLVED = "resolved"


class StartHandoff(Contract):
    conversation_id: str
    channel: Channel
    end_user_id: str
    external_key: str | None = None
    reason: str = Field(max_length=1000)
    transcript: list[TranscriptLine] = Field(default_factory=list)
    profile: EndUserProfile | None = None
    create_ticket: bool = True
    notify_chat: bool = Field(
        default=True,
        description="Tell chat the owner is now human; chat sends False when it opened the handoff itself",
    )


class Handoff(Contract):
    id: str
    tenant_id: str
    conversation_id: str
    channel: Channel
    end_user_id: str
    status: HandoffStatus
    reason: str
    operator_id: str | None = None
    ticket: Ticket | None = None
    created_at: datetime
    updated_at: datetime


class RelayCustomerMessage(Contract):
    """Chat tells integrations a customer wrote while a human owns the conversation."""

    conversation_id: str
    message_id: str
    text: str


class DeliverMessage(Contract):
    """Send a text to the customer on their channel (operator replies, proactive messages)."""

    channel: Channel
    external_key: str
    text: str = Field(min_length=1, max_length=20000)
    idempotency_key: str = Field(min_length=1, max_length=200)


# --- operator actions on the handoff queue, channel delivery results (added with the integrations service) ---


class HandoffAction(Contract):
    """Claim, return to bot or resolve: who does it and why."""

    operator_id: str = Field(min_length=1, max_length=200)
    reason: str = Field(default="", max_length=1000)


class HandoffReply(Contract):
    """An operator's answer; the same ``idempotency_key`` sent twice delivers the reply once."""

    text: str = Field(min_length=1, max_length=4000)
    operator_id: str = Field(min_length=1, max_length=200)
    idempotency_key: str = Field(min_length=1, max_length=200)


class HandoffDetail(Handoff):
    """A handoff as the operator's queue shows it: transcript, customer profile, time waited."""

    external_key: str | None = None
    transcript: list[TranscriptLine] = Field(default_factory=list)
    profile: EndUserProfile | None = None
    waiting_seconds: float = Field(
        ge=0, description="Since it was opened until a person first answered (or it closed), else until now"
    )
    claimed_at: datetime | None = None
    closed_at: datetime | None = None
    answered_at: datetime | None = Field(default=None, description="When an operator first replied")
    replies: list[OperatorReplyState] = Field(
        default_factory=list,
        description="Operator replies of this handoff with their delivery state, oldest first",
    )


DeliveryStatus = Literal["pending", "sent", "failed", "stored"]


class DeliveryResult(Contract):
    """``pending``: not delivered yet, retried in the background; ``failed``: given up, send the same request
    (same idempotency key) again to retry; ``stored``: web / API channels, nothing to send."""

    id: str
    channel: Channel
    status: DeliveryStatus
    provider_message_ids: list[str] = Field(default_factory=list)
    duplicate: bool = Field(default=False, description="Already delivered under this idempotency key")
    attempts: int = 0
    last_error: str | None = None
    next_attempt_at: datetime | None = None


class OperatorReplyState(Contract):
    """An operator's reply as stored once, and where its delivery stands."""

    id: str
    idempotency_key: str = Field(description="The key the reply was sent with; resend it to retry")
    text: str
    operator_id: str | None = None
    status: DeliveryStatus
    attempts: int = 0
    last_error: str | None = None
    next_attempt_at: datetime | None = None
    created_at: datetime


class HandoffReplyResult(Contract):
    handoff: Handoff
    message_id: str | None = Field(default=None, description="The operator message stored in chat")
    delivery: DeliveryResult | None = Field(
        default=None, description="On web / API channels status 'stored': the widget reads it from chat"
    )


HandoffDetail.model_rebuild()


class IntegrationsClient:
    """Integrations' internal API as chat uses it (CRM lookups, tickets, handoff start and relay), on the
    caller's shared downstream client. ``headers`` carry the caller's identity (tenant, end user)."""

    def __init__(self, downstream: Downstream, *, timeout: float | None = None) -> None:
        self.downstream = downstream
        self.timeout = timeout

    async def customer(self, lookup: CustomerLookup, *, headers: Mapping[str, str]) -> Customer:
        payload = await self._post("/internal/v1/crm/customers/lookup", lookup, headers, idempotent=True)
        return Customer.model_validate(payload)

    async def order(self, lookup: OrderLookup, *, headers: Mapping[str, str]) -> Order:
        payload = await self._post("/internal/v1/crm/orders/lookup", lookup, headers, idempotent=True)
        return Order.model_validate(payload)

    async def create_ticket(self, ticket: CreateTicket, *, headers: Mapping[str, str]) -> Ticket:
        """Safe to retry: integrations deduplicates on the ticket's idempotency key."""
        payload = await self._post("/internal/v1/tickets", ticket, headers, idempotent=True)
        return Ticket.model_validate(payload)

    async def start_handoff(self, handoff: StartHandoff, *, headers: Mapping[str, str]) -> Handoff:
        payload = await self._post("/internal/v1/handoffs", handoff, headers, idempotent=False)
        return Handoff.model_validate(payload)

    async def relay(self, message: RelayCustomerMessage, *, headers: Mapping[str, str]) -> None:
        await self._post("/internal/v1/handoffs/relay", message, headers, idempotent=True)

    async def _post(self, path: str, body: Contract, headers: Mapping[str, str], *, idempotent: bool) -> Any:
        return await self.downstream.json_request(
            "POST",
            path,
            json=body.model_dump(mode="json"),
            headers=headers,
            idempotent=idempotent,
            timeout=self.timeout,
        )
