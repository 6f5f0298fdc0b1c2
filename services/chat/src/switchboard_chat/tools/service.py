"""The assistant's tools and what they call in integrations.

Which tools a turn binds depends on the end user, never on what the conversation or a passage says:
personal-data tools (``get_customer``, ``get_order_status``) and tools with side effects (``create_ticket``)
only for a verified identity. A tool with side effects is never run because the model asked for it: the
call is held as a pending action, the customer is asked, and only the customer's own "yes" in their next
message runs it (``turn.confirmation``), so an instruction planted in a document cannot.
"""

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
class PendingAction:
    """A side-effecting tool call the model asked for, waiting for the customer's confirmation."""

    tool: str
    arguments: dict[str, Any]

    def as_meta(self) -> dict[str, Any]:
        return {"tool": self.tool, "arguments": self.arguments}

    @classmethod
    def from_meta(cls, meta: Any) -> PendingAction | None:
        if not isinstance(meta, dict) or not isinstance(meta.get("tool"), str):
            return None
        arguments = meta.get("arguments")
        return cls(meta["tool"], arguments if isinstance(arguments, dict) else {})


CONFIRMATION_NEEDED = (
    "Not done: this action needs the customer's confirmation. Tell the customer what you would do and ask "
    "them to reply yes to go ahead; it is done only when they confirm."
)


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
    # Who the customer is in the CRM: the verified identity token's claims, never a request body.
    claimed_email: str | None = None
    claimed_crm_id: str | None = None
    handoff_reason: str | None = None
    crm_id: str | None = None
    ticket_id: str | None = None
    pending_action: PendingAction | None = None

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
    side_effect: bool
    handler: Callable[[ToolContext, BaseModel], Awaitable[ToolOutcome]]
    context: ToolContext

    async def run(self, arguments: dict[str, Any], *, confirmed: bool = False) -> ToolOutcome:
        """Run the tool for the model; ``confirmed``: the customer said yes to this very action."""
        try:
            args = self.args_model.model_validate(arguments)
        except ValidationError as exc:
            return ToolOutcome("error", message=f"invalid arguments: {exc.errors()[0].get('msg', '')}")
        if (self.personal or self.side_effect) and not self.context.verified:
            return ToolOutcome(
                "refused",
                message="The customer is not signed in; ask them to sign in or offer a human.",
            )
        if self.side_effect and not confirmed:
            self.context.pending_action = PendingAction(self.name, args.model_dump(mode="json"))
            return ToolOutcome("refused", message=CONFIRMATION_NEEDED)
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


def customer_lookup(ctx: ToolContext) -> CustomerLookup:
    """Which CRM customer this end user is: the identity token's ``crm_id`` or ``email`` claim, else the id
    an earlier verified lookup found (remembered in the profile), else the end user's own id."""
    if ctx.crm_id is not None:
        return CustomerLookup(by="id", value=ctx.crm_id)
    if ctx.claimed_crm_id:
        return CustomerLookup(by="id", value=ctx.claimed_crm_id)
    if ctx.claimed_email:
        return CustomerLookup(by="email", value=ctx.claimed_email)
    if ctx.profile is not None and ctx.profile.crm_id:
        return CustomerLookup(by="id", value=ctx.profile.crm_id)
    return CustomerLookup(by="id", value=ctx.end_user_id)


async def _customer(ctx: ToolContext) -> Customer:
    lookup = customer_lookup(ctx)
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
        requester=Requester(
            name=profile.name, email=ctx.claimed_email or profile.email, end_user_id=ctx.end_user_id
        ),
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


@dataclass(frozen=True, slots=True)
class ToolDefinition:
    description: str
    args_model: type[BaseModel]
    handler: Callable[[ToolContext, BaseModel], Awaitable[ToolOutcome]]
    personal: bool = False  # reads the customer's personal data
    side_effect: bool = False  # changes something outside the conversation on the customer's behalf


TOOL_DEFINITIONS: dict[str, ToolDefinition] = {
    "get_customer": ToolDefinition(
        "Look up the signed-in customer's account (name, email, balance) in the CRM.",
        NoArguments,
        get_customer,
        personal=True,
    ),
    "get_order_status": ToolDefinition(
        "Look up the status and tracking of one of the signed-in customer's orders by its number.",
        OrderArguments,
        get_order_status,
        personal=True,
    ),
    "create_ticket": ToolDefinition(
        "Open a support ticket with the conversation transcript when the problem needs follow-up. The "
        "customer is asked to confirm first.",
        TicketArguments,
        create_ticket,
        side_effect=True,
    ),
    # The documented way out of any conversation (the bot takes it on its own after failed answers too).
    "handoff_to_human": ToolDefinition(
        "Hand the conversation to a human support agent when the customer asks for one or you cannot help.",
        HandoffArguments,
        handoff_to_human,
    ),
}


def build_tools(ctx: ToolContext, enabled: list[str]) -> list[ToolSpec]:
    """The tenant's enabled tools this end user may use: personal-data and side-effecting tools only for a
    verified identity (an anonymous visitor's model is never even offered them)."""
    tools = []
    for name in enabled:
        definition = TOOL_DEFINITIONS.get(name)
        if definition is None or ((definition.personal or definition.side_effect) and not ctx.verified):
            continue
        tools.append(
            ToolSpec(
                name,
                definition.description,
                definition.args_model,
                definition.personal,
                definition.side_effect,
                definition.handler,
                ctx,
            )
        )
    return tools


def transcript_of(window: list[tuple[str, str]]) -> list[TranscriptLine]:
    return [TranscriptLine(role=Role(role), text=text) for role, text in window]
