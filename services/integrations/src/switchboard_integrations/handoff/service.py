"""The human handoff queue: start (with a ticket holding the transcript), list, claim, reply (stored in
chat and delivered once on the customer's channel), return to the bot, resolve; chat is told of every
change. Ticket webhooks (agent replies, status changes) come back through here too."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

import structlog

from switchboard_integrations.channels.models import ChannelDeliveryRow
from switchboard_integrations.channels.render import OutboundText
from switchboard_integrations.channels.repository import deliveries_of_handoff
from switchboard_integrations.channels.service import MESSENGERS, deliver, record_stored
from switchboard_integrations.channels.texts import DEFAULT_LANGUAGE, language_of_text
from switchboard_integrations.connectors.base import TicketEvent
from switchboard_integrations.connectors.service import ticket_connector_by_id
from switchboard_integrations.db import as_utc, utcnow
from switchboard_integrations.handoff import repository
from switchboard_integrations.handoff.models import HandoffRow
from switchboard_integrations.runtime import Runtime
from switchboard_integrations.tickets import service as tickets
from switchboard_integrations.tickets.models import TicketRow
from switchboard_integrations.tickets.repository import by_external_id
from switchboard_shared.contracts.analytics import EventType
from switchboard_shared.contracts.chat import (
    Channel,
    ConversationStatus,
    EndUserProfile,
    OperatorMessage,
    Owner,
    OwnerChange,
    Role,
    StatusChange,
)
from switchboard_shared.contracts.common import Page
from switchboard_shared.contracts.integrations import (
    CreateTicket,
    Handoff,
    HandoffAction,
    HandoffDetail,
    HandoffReply,
    HandoffReplyResult,
    HandoffStatus,
    OperatorReplyState,
    RelayCustomerMessage,
    Requester,
    StartHandoff,
    Ticket,
    TranscriptLine,
)
from switchboard_shared.errors import AppError, ErrorCode
from switchboard_shared.stores import LockTimeout, StoreUnavailable

log = structlog.get_logger(__name__)
MAX_TRANSCRIPT_LINES = 500


def _ticket(row: TicketRow | None) -> Ticket | None:
    return tickets.ticket_out(row) if row is not None and row.external_id else None


def handoff_out(row: HandoffRow, ticket: TicketRow | None = None) -> Handoff:
    return Handoff(
        id=row.id,
        tenant_id=row.tenant_id,
        conversation_id=row.conversation_id,
        channel=Channel(row.channel),
        end_user_id=row.end_user_id,
        status=HandoffStatus(row.status),
        reason=row.reason,
        operator_id=row.operator_id,
        ticket=_ticket(ticket),
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
    )


def reply_out(row: ChannelDeliveryRow, handoff_id: str) -> OperatorReplyState:
    prefix = f"operator:{handoff_id}:"
    key = row.idempotency_key
    return OperatorReplyState(
        id=row.id,
        idempotency_key=key[len(prefix) :] if key.startswith(prefix) else key,
        text=str((row.payload or {}).get("text", "")),
        operator_id=row.operator_id,
        status=row.status,  # type: ignore[arg-type]
        attempts=row.attempts,
        last_error=row.last_error,
        next_attempt_at=as_utc(row.next_attempt_at) if row.next_attempt_at else None,
        created_at=as_utc(row.created_at),
    )


def detail_out(
    row: HandoffRow,
    ticket: TicketRow | None,
    now: datetime,
    replies: Sequence[ChannelDeliveryRow] = (),
) -> HandoffDetail:
    # The customer waits until a person answers them (or the handoff closes), not until someone claims it.
    stops = [as_utc(moment) for moment in (row.answered_at, row.closed_at) if moment is not None]
    waited_until = min(stops) if stops else now
    return HandoffDetail(
        **handoff_out(row, ticket).model_dump(),
        external_key=row.external_key,
        transcript=[TranscriptLine.model_validate(line) for line in row.transcript],
        profile=EndUserProfile.model_validate(row.profile) if row.profile else None,
        waiting_seconds=max(0.0, (waited_until - as_utc(row.created_at)).total_seconds()),
        claimed_at=as_utc(row.claimed_at) if row.claimed_at else None,
        closed_at=as_utc(row.closed_at) if row.closed_at else None,
        answered_at=as_utc(row.answered_at) if row.answered_at else None,
        replies=[reply_out(reply, row.id) for reply in replies],
    )


async def _load(runtime: Runtime, *, tenant_id: str, handoff_id: str) -> tuple[HandoffRow, TicketRow | None]:
    async with runtime.transaction() as session:
        row = await session.get(HandoffRow, handoff_id)
        if row is None or row.tenant_id != tenant_id:
            raise AppError(ErrorCode.NOT_FOUND, "No such handoff.")
        ticket = await session.get(TicketRow, row.ticket_id) if row.ticket_id else None
    return row, ticket


async def _update(runtime: Runtime, handoff_id: str, **changes: Any) -> tuple[HandoffRow, TicketRow | None]:
    async with runtime.transaction() as session:
        row = await session.get(HandoffRow, handoff_id)
        assert row is not None
        for key, value in changes.items():
            setattr(row, key, value)
        row.updated_at = utcnow()
        await session.flush()
        ticket = await session.get(TicketRow, row.ticket_id) if row.ticket_id else None
    return row, ticket


# --- start and list ---


async def start(runtime: Runtime, *, tenant_id: str, request: StartHandoff) -> Handoff:
    """Open a handoff (or return the one already open for the conversation) and its ticket."""
    try:
        async with runtime.platform.stores.locks.hold(
            f"handoff:{tenant_id}:{request.conversation_id}", ttl=60.0, timeout=30.0
        ):
            return await _start_locked(runtime, tenant_id=tenant_id, request=request)
    except LockTimeout as exc:
        raise AppError(ErrorCode.CONFLICT, "A handoff for this conversation is being opened.") from exc
    except StoreUnavailable:
        return await _start_locked(runtime, tenant_id=tenant_id, request=request)


async def _start_locked(runtime: Runtime, *, tenant_id: str, request: StartHandoff) -> Handoff:
    async with runtime.transaction() as session:
        existing = await repository.open_for_conversation(
            session, tenant_id=tenant_id, conversation_id=request.conversation_id
        )
        if existing is not None:
            ticket = await session.get(TicketRow, existing.ticket_id) if existing.ticket_id else None
            return handoff_out(existing, ticket)
        row = HandoffRow(
            tenant_id=tenant_id,
            conversation_id=request.conversation_id,
            channel=request.channel.value,
            end_user_id=request.end_user_id,
            external_key=request.external_key,
            status=HandoffStatus.WAITING.value,
            reason=request.reason,
            transcript=[line.model_dump(mode="json") for line in request.transcript][-MAX_TRANSCRIPT_LINES:],
            profile=request.profile.model_dump(mode="json") if request.profile else None,
        )
        session.add(row)
    ticket_row: TicketRow | None = None
    if request.create_ticket:
        ticket_row = await _open_ticket(runtime, tenant_id=tenant_id, row=row, request=request)
    if not request.notify_chat:
        return handoff_out(row, ticket_row)
    try:
        # A handoff opened by a rule or an operator: chat must stop the bot. A failure is logged, not
        # raised: the handoff is in the queue and an operator's claim tells chat again.
        await runtime.chat.set_owner(
            tenant_id=tenant_id,
            conversation_id=row.conversation_id,
            change=OwnerChange(owner=Owner.HUMAN, actor="integrations", reason=request.reason[:1000]),
            timeout=5.0,
        )
    except AppError as exc:
        log.warning("handoff_chat_not_told", handoff_id=row.id, code=exc.code)
    return handoff_out(row, ticket_row)


async def _open_ticket(
    runtime: Runtime, *, tenant_id: str, row: HandoffRow, request: StartHandoff
) -> TicketRow | None:
    profile = request.profile or EndUserProfile()
    subject_name = profile.name or request.end_user_id
    try:
        ticket, _ = await tickets.create_ticket(
            runtime,
            tenant_id=tenant_id,
            request=CreateTicket(
                conversation_id=request.conversation_id,
                subject=f"Handoff: {subject_name}"[:300],
                transcript=request.transcript,
                description=f"Reason: {request.reason}" if request.reason else None,
                requester=Requester(name=profile.name, email=profile.email, end_user_id=request.end_user_id),
                tags=["handoff", request.channel.value],
                idempotency_key=f"handoff:{row.id}",
            ),
        )
    except AppError as exc:
        # No ticketing connector, or the system is down: the handoff still reaches the operators' queue.
        log.warning("handoff_ticket_not_created", handoff_id=row.id, code=exc.code)
        return None
    saved, ticket_row = await _update(runtime, row.id, ticket_id=ticket.id)
    row.ticket_id = saved.ticket_id
    return ticket_row


async def list_queue(
    runtime: Runtime, *, tenant_id: str, statuses: list[HandoffStatus], limit: int, offset: int
) -> Page[HandoffDetail]:
    now = utcnow()
    async with runtime.transaction() as session:
        rows, total = await repository.list_handoffs(
            session, tenant_id=tenant_id, statuses=[s.value for s in statuses], limit=limit, offset=offset
        )
        ticket_ids = [row.ticket_id for row in rows if row.ticket_id]
        ticket_rows = {tid: await session.get(TicketRow, tid) for tid in ticket_ids}
        replies = {
            row.id: await deliveries_of_handoff(session, tenant_id=tenant_id, handoff_id=row.id)
            for row in rows
        }
    items = [detail_out(row, ticket_rows.get(row.ticket_id or ""), now, replies[row.id]) for row in rows]
    return Page[HandoffDetail](items=items, total=total, limit=limit, offset=offset)


async def get(runtime: Runtime, *, tenant_id: str, handoff_id: str) -> HandoffDetail:
    row, ticket = await _load(runtime, tenant_id=tenant_id, handoff_id=handoff_id)
    async with runtime.transaction() as session:
        replies = await deliveries_of_handoff(session, tenant_id=tenant_id, handoff_id=row.id)
    return detail_out(row, ticket, utcnow(), replies)


async def retry_reply(
    runtime: Runtime, *, tenant_id: str, handoff_id: str, reply_id: str
) -> OperatorReplyState:
    """Send an operator reply that has not gone through once more, now (the words stored with it)."""
    row, _ = await _load(runtime, tenant_id=tenant_id, handoff_id=handoff_id)
    async with runtime.transaction() as session:
        reply = await session.get(ChannelDeliveryRow, reply_id)
    if reply is None or reply.tenant_id != tenant_id or reply.handoff_id != row.id:
        raise AppError(ErrorCode.NOT_FOUND, "No such reply in this handoff.")
    if reply.status in ("pending", "failed") and reply.payload and row.external_key:
        await deliver(
            runtime,
            tenant_id=tenant_id,
            channel=Channel(reply.channel),
            external_key=reply.external_key,
            message=OutboundText.from_json(reply.payload),
            idempotency_key=reply.idempotency_key,
            background=True,
        )
        async with runtime.transaction() as session:
            reply = await session.get(ChannelDeliveryRow, reply_id)
        assert reply is not None
    return reply_out(reply, row.id)


# --- operator actions ---


class OperatorAction(Protocol):
    """What an operator does to a handoff's owner or status: claim, return to the bot, resolve."""

    async def __call__(
        self, runtime: Runtime, *, tenant_id: str, handoff_id: str, action: HandoffAction
    ) -> Handoff: ...


async def _load_for_operator(
    runtime: Runtime, *, tenant_id: str, handoff_id: str, operator_id: str
) -> tuple[HandoffRow, TicketRow | None]:
    """The handoff an operator acts on: CONFLICT once it is closed, or while another operator holds it."""
    row, ticket = await _load(runtime, tenant_id=tenant_id, handoff_id=handoff_id)
    if row.status not in repository.OPEN_STATUSES:
        raise AppError(ErrorCode.CONFLICT, f"The handoff is {row.status}; it takes no more actions.")
    if row.status == HandoffStatus.CLAIMED.value and row.operator_id not in (None, operator_id):
        raise AppError(ErrorCode.CONFLICT, f"The handoff is claimed by {row.operator_id}.")
    return row, ticket


async def claim(runtime: Runtime, *, tenant_id: str, handoff_id: str, action: HandoffAction) -> Handoff:
    row, ticket = await _load_for_operator(
        runtime, tenant_id=tenant_id, handoff_id=handoff_id, operator_id=action.operator_id
    )
    if row.status == HandoffStatus.CLAIMED.value:
        return handoff_out(row, ticket)
    row, ticket = await _hand_over(
        runtime, row, action, owner=Owner.HUMAN, reason="claimed", claimed_at=utcnow()
    )
    return handoff_out(row, ticket)


async def _hand_over(
    runtime: Runtime,
    row: HandoffRow,
    action: HandoffAction,
    *,
    owner: Owner,
    reason: str,
    **changes: Any,
) -> tuple[HandoffRow, TicketRow | None]:
    """Give the conversation to ``owner`` in chat (``reason`` unless the operator gave one), then record the
    handoff as the operator's: claimed when a person owns it now, returned when the bot does."""
    status = HandoffStatus.CLAIMED if owner is Owner.HUMAN else HandoffStatus.RETURNED
    await runtime.chat.set_owner(
        tenant_id=row.tenant_id,
        conversation_id=row.conversation_id,
        change=OwnerChange(owner=owner, actor=action.operator_id, reason=action.reason or reason),
    )
    return await _update(runtime, row.id, status=status.value, operator_id=action.operator_id, **changes)


async def reply(
    runtime: Runtime, *, tenant_id: str, handoff_id: str, body: HandoffReply
) -> HandoffReplyResult:
    row, ticket = await _load_for_operator(
        runtime, tenant_id=tenant_id, handoff_id=handoff_id, operator_id=body.operator_id
    )
    return await _operator_reply(
        runtime,
        row,
        text=body.text,
        operator_id=body.operator_id,
        key=f"operator:{row.id}:{body.idempotency_key}",
    )


async def _operator_reply(
    runtime: Runtime, row: HandoffRow, *, text: str, operator_id: str, key: str
) -> HandoffReplyResult:
    """Store the reply in chat, then deliver it on the customer's channel, each once per ``key``.

    A delivery that fails does not fail the reply: it is stored with its state (pending: retried in the
    background; failed: sending the same key again retries it) and the operator sees that state."""
    message_id = await runtime.chat.operator_message(
        tenant_id=row.tenant_id,
        conversation_id=row.conversation_id,
        message=OperatorMessage(text=text, operator_id=operator_id, idempotency_key=key),
    )
    channel = Channel(row.channel)
    outbound = OutboundText(text=text, language=language_of_text(text) or DEFAULT_LANGUAGE)
    if channel in MESSENGERS and row.external_key:
        delivery = await deliver(
            runtime,
            tenant_id=row.tenant_id,
            channel=channel,
            external_key=row.external_key,
            message=outbound,
            idempotency_key=key,
            background=True,
            handoff_id=row.id,
            operator_id=operator_id,
        )
    else:
        delivery = await record_stored(
            runtime,
            tenant_id=row.tenant_id,
            channel=channel,
            external_key=row.external_key or row.conversation_id,
            idempotency_key=key,
            message=outbound,
            handoff_id=row.id,
            operator_id=operator_id,
        )
    # ``operator_replied`` is counted by chat, which stores every operator message once.
    if delivery.created:
        now = utcnow()
        changes: dict[str, Any] = {
            "transcript": [
                *row.transcript,
                TranscriptLine(role=Role.OPERATOR, text=text, at=now).model_dump(mode="json"),
            ][-MAX_TRANSCRIPT_LINES:]
        }
        if row.status == HandoffStatus.WAITING.value:
            changes.update(status=HandoffStatus.CLAIMED.value, operator_id=operator_id, claimed_at=now)
        if row.answered_at is None:
            changes["answered_at"] = now
        saved, ticket = await _update(runtime, row.id, **changes)
    else:
        saved, ticket = await _load(runtime, tenant_id=row.tenant_id, handoff_id=row.id)
    return HandoffReplyResult(
        handoff=handoff_out(saved, ticket), message_id=message_id, delivery=delivery.result
    )


async def return_to_bot(
    runtime: Runtime, *, tenant_id: str, handoff_id: str, action: HandoffAction
) -> Handoff:
    row, ticket = await _load_for_operator(
        runtime, tenant_id=tenant_id, handoff_id=handoff_id, operator_id=action.operator_id
    )
    row, ticket = await _hand_over(
        runtime, row, action, owner=Owner.BOT, reason="returned to bot", closed_at=utcnow()
    )
    runtime.platform.analytics.emit(
        EventType.HANDOFF_RETURNED,
        tenant_id=tenant_id,
        conversation_id=row.conversation_id,
        end_user_id=row.end_user_id,
        channel=row.channel,
        properties={"operator_id": action.operator_id},
        event_id=f"hret-{row.id}",
    )
    return handoff_out(row, ticket)


async def resolve(runtime: Runtime, *, tenant_id: str, handoff_id: str, action: HandoffAction) -> Handoff:
    row, ticket = await _load_for_operator(
        runtime, tenant_id=tenant_id, handoff_id=handoff_id, operator_id=action.operator_id
    )
    return await _resolve(runtime, row, actor=action.operator_id, reason=action.reason or "resolved")


async def _resolve(runtime: Runtime, row: HandoffRow, *, actor: str, reason: str) -> Handoff:
    await runtime.chat.set_status(
        tenant_id=row.tenant_id,
        conversation_id=row.conversation_id,
        change=StatusChange(status=ConversationStatus.RESOLVED, actor=actor, reason=reason),
    )
    await runtime.chat.set_owner(
        tenant_id=row.tenant_id,
        conversation_id=row.conversation_id,
        change=OwnerChange(owner=Owner.BOT, actor=actor, reason=reason),
    )
    saved, ticket = await _update(runtime, row.id, status=HandoffStatus.RESOLVED.value, closed_at=utcnow())
    return handoff_out(saved, ticket)


async def relay(runtime: Runtime, *, tenant_id: str, body: RelayCustomerMessage) -> Handoff:
    """A customer wrote while a human owns the conversation: keep the transcript and the ticket current."""
    async with runtime.transaction() as session:
        row = await repository.open_for_conversation(
            session, tenant_id=tenant_id, conversation_id=body.conversation_id
        )
        if row is None:
            raise AppError(ErrorCode.NOT_FOUND, "No open handoff for this conversation.")
        row.transcript = [
            *row.transcript,
            TranscriptLine(role=Role.USER, text=body.text, at=utcnow()).model_dump(mode="json"),
        ][-MAX_TRANSCRIPT_LINES:]
        row.updated_at = utcnow()
        ticket_id = row.ticket_id
    if ticket_id:
        try:
            await tickets.add_customer_comment(runtime, ticket_id=ticket_id, text=body.text)
        except AppError as exc:
            log.warning("relay_ticket_comment_failed", handoff_id=row.id, code=exc.code)
    saved, ticket = await _load(runtime, tenant_id=tenant_id, handoff_id=row.id)
    return handoff_out(saved, ticket)


# --- ticket webhooks ---


async def apply_ticket_event(runtime: Runtime, *, connector_id: str, event: TicketEvent) -> str:
    """An agent's reply goes to the customer; a closing status resolves the handoff. Returns what happened."""
    async with runtime.transaction() as session:
        ticket = await by_external_id(
            session, connector_id=connector_id, external_id=event.external_ticket_id
        )
        if ticket is None:
            return "unknown_ticket"
        row = await repository.open_for_ticket(session, ticket_id=ticket.id)
        if event.status:
            ticket.status = event.status
    outcome = "status" if event.status else "ignored"
    if row is None:
        return outcome
    own_comment = (event.comment_id is not None and event.comment_id in ticket.own_comment_ids) or (
        event.comment_author_id is not None and event.comment_author_id == ticket.requester_external_id
    )
    if (
        event.comment_text
        and event.comment_public
        and not own_comment
        and row.status in repository.OPEN_STATUSES
    ):
        agent = event.comment_author_name or event.comment_author_id or "agent"
        await _operator_reply(
            runtime,
            row,
            text=event.comment_text[:4000],
            operator_id=f"{ticket.system}:{agent}"[:200],
            key=f"ticket:{ticket.system}:{event.comment_id or event.event_id}",
        )
        outcome = "reply"
        row, _ = await _load(runtime, tenant_id=row.tenant_id, handoff_id=row.id)
    connector = await ticket_connector_by_id(runtime, kind=ticket.system, connector_id=connector_id)
    if event.status in connector.closed_statuses and row.status in repository.OPEN_STATUSES:
        await _resolve(runtime, row, actor=f"{ticket.system}", reason=f"ticket {event.status}")
        outcome = "resolved"
    return outcome
