"""The assistant's tools and what they call in integrations; personal data only for a verified identity."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from langchain_core.tools import StructuredTool
from pydantic import BaseModel, Field, ValidationError

from switchboard_shared.contracts.chat import EndUserProfile, Role
from switchboard_shared.contracts.integrations import (
    CreateTicket,
    Customer,
    CustomerLookup,
    Order,
    OrderLookup,
    Requester,
    TranscriptLine,
)
from switchboard_shared.contracts.routes import END_USER_HEADER, END_USER_VERIFIED_HEADER, TENANT_HEADER
from switchboard_shared.errors import AppError, ErrorCode
from switchboard_shared.http_client import Downstream

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class ToolOutcome:
    """``status``: ok, error (the system failed), refused (not allowed for this user), not_found."""

    status: str
    data: dict[str, Any] = field(default_factory=dict)
    message: str = ""

    def for_model(self) -> dict[str, Any]:
        return {"status": self.status, "message": self.message, **self.data}


@dataclass(slots=True)
class ToolContext:
    integrations: Downstream
    tenant_id: str
    conversation_id: str
    message_id: str
    end_user_id: str
    verified: bool
    profile: EndUserProfile | None
    transcript: list[TranscriptLine]
    timeout: float
    handoff_reason: str | None = None
    crm_id: str | None = None
    ticket_id: str | None = None

    def headers(self) -> dict[str, str]:
        headers = {TENANT_HEADER: self.tenant_id, END_USER_HEADER: self.end_user_id}
        if self.verified:
            # Integrations serves personal data only for a verified identity; carry the gateway's verdict.
            headers[END_USER_VERIFIED_HEADER] = "1"
        return headers


@dataclass(slots=True)
class ToolSpec:
    name: str
    description: str
    args_model: type[BaseModel]
    personal: bool
    handler: Callable[[ToolContext, BaseModel], Awaitable[ToolOutcome]]
    context: ToolContext

    async def run(self, arguments: dict[str, Any]) -> ToolOutcome:
        try:
            args = self.args_model.model_validate(arguments)
        except ValidationError as exc:
            return ToolOutcome("error", message=f"invalid arguments: {exc.errors()[0].get('msg', '')}")
        if self.personal and not self.context.verified:
            return ToolOutcome(
                "refused",
                message="The customer is not signed in; ask them to sign in or offer a human.",
            )
        try:
            return await self.handler(self.context, args)
        except AppError as exc:
            if exc.code is ErrorCode.NOT_FOUND:
                return ToolOutcome("not_found", message=exc.message)
            log.warning("tool_failed", tool=self.name, code=exc.code, error=exc.message)
            return ToolOutcome("error", message="The system behind this tool is unavailable right now.")

    def as_langchain(self) -> StructuredTool:
        async def run_tool(**kwargs: Any) -> dict[str, Any]:
            return (await self.run(kwargs)).for_model()

        return StructuredTool.from_function(
            coroutine=run_tool, name=self.name, description=self.description, args_schema=self.args_model
        )


class NoArguments(BaseModel):
    pass


class OrderArguments(BaseModel):
    order_number: str = Field(min_length=1, max_length=100, description="The order number the customer gave")


class TicketArguments(BaseModel):
    subject: str = Field(min_length=1, max_length=300, description="A one-line summary of the problem")
    description: str = Field(default="", max_length=5000, description="What the customer needs")


class HandoffArguments(BaseModel):
    reason: str = Field(default="customer asked for a human", max_length=500, description="Why")


async def _customer(ctx: ToolContext) -> Customer:
    if ctx.crm_id is None and ctx.profile is not None and ctx.profile.crm_id:
        ctx.crm_id = ctx.profile.crm_id
    if ctx.crm_id is not None:
        lookup = CustomerLookup(by="id", value=ctx.crm_id)
    elif ctx.profile is not None and ctx.profile.email:
        lookup = CustomerLookup(by="email", value=ctx.profile.email)
    else:
        lookup = CustomerLookup(by="id", value=ctx.end_user_id)
    payload = await ctx.integrations.json_request(
        "POST",
        "/internal/v1/crm/customers/lookup",
        json=lookup.model_dump(),
        headers=ctx.headers(),
        idempotent=True,
        timeout=ctx.timeout,
    )
    customer = Customer.model_validate(payload)
    ctx.crm_id = customer.id
    return customer


async def get_customer(ctx: ToolContext, _: BaseModel) -> ToolOutcome:
    customer = await _customer(ctx)
    return ToolOutcome("ok", data={"customer": customer.model_dump(mode="json", exclude_none=True)})


async def get_order_status(ctx: ToolContext, args: BaseModel) -> ToolOutcome:
    assert isinstance(args, OrderArguments)
    customer = await _customer(ctx)
    payload = await ctx.integrations.json_request(
        "POST",
        "/internal/v1/crm/orders/lookup",
        json=OrderLookup(order_number=args.order_number, customer_id=customer.id).model_dump(),
        headers=ctx.headers(),
        idempotent=True,
        timeout=ctx.timeout,
    )
    order = Order.model_validate(payload)
    return ToolOutcome("ok", data={"order": order.model_dump(mode="json", exclude_none=True)})


async def create_ticket(ctx: ToolContext, args: BaseModel) -> ToolOutcome:
    assert isinstance(args, TicketArguments)
    profile = ctx.profile or EndUserProfile()
    body = CreateTicket(
        conversation_id=ctx.conversation_id,
        subject=args.subject,
        description=args.description or None,
        transcript=ctx.transcript,
        requester=Requester(name=profile.name, email=profile.email, end_user_id=ctx.end_user_id),
        idempotency_key=f"chat:{ctx.conversation_id}:{ctx.message_id}:ticket",
        tags=["switchboard", "assistant"],
    )
    payload = await ctx.integrations.json_request(
        "POST",
        "/internal/v1/tickets",
        json=body.model_dump(mode="json"),
        headers=ctx.headers(),
        idempotent=True,
        timeout=ctx.timeout,
    )
    ctx.ticket_id = str(payload.get("id")) if isinstance(payload, dict) else None
    return ToolOutcome("ok", data={"ticket": payload})


async def handoff_to_human(ctx: ToolContext, args: BaseModel) -> ToolOutcome:
    assert isinstance(args, HandoffArguments)
    # The turn performs the handoff after the answer, so owner and transcript change in one place.
    ctx.handoff_reason = args.reason or "customer asked for a human"
    return ToolOutcome("ok", message="A person from the support team will take over this conversation.")


TOOL_DEFINITIONS: dict[
    str, tuple[str, type[BaseModel], bool, Callable[[ToolContext, BaseModel], Awaitable[ToolOutcome]]]
] = {
    "get_customer": (
        "Look up the signed-in customer's account (name, email, balance) in the CRM.",
        NoArguments,
        True,
        get_customer,
    ),
    "get_order_status": (
        "Look up the status and tracking of one of the signed-in customer's orders by its number.",
        OrderArguments,
        True,
        get_order_status,
    ),
    "create_ticket": (
        "Open a support ticket with the conversation transcript when the problem needs follow-up.",
        TicketArguments,
        False,
        create_ticket,
    ),
    "handoff_to_human": (
        "Hand the conversation to a human support agent when the customer asks for one or you cannot help.",
        HandoffArguments,
        False,
        handoff_to_human,
    ),
}


def build_tools(ctx: ToolContext, enabled: list[str]) -> list[ToolSpec]:
    tools = []
    for name in enabled:
        definition = TOOL_DEFINITIONS.get(name)
        if definition is None:
            continue
        description, args_model, personal, handler = definition
        tools.append(ToolSpec(name, description, args_model, personal, handler, ctx))
    return tools


def transcript_of(window: list[tuple[str, str]]) -> list[TranscriptLine]:
    return [TranscriptLine(role=Role(role), text=text) for role, text in window]
