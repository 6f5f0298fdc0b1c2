"""Handing a conversation to a human, through integrations: relaying the customer's messages while a human
owns it, opening a handoff (with a ticket holding the transcript) from a turn or at the customer's request."""

from __future__ import annotations

import structlog

from switchboard_chat.assistant import service as assistant_service
from switchboard_chat.conversations import service as conversations
from switchboard_chat.conversations.window import WindowMessage
from switchboard_chat.providers.texts import text
from switchboard_chat.runtime import Runtime
from switchboard_chat.tools.service import transcript_of
from switchboard_chat.turn.intake import Prepared, snapshot
from switchboard_chat.turn.reply import reply_with_system_text
from switchboard_chat.turn.stream import TurnHandle
from switchboard_shared.contracts.chat import EndUserProfile, HandoffInfo, HandoffPacket, Owner
from switchboard_shared.contracts.integrations import Handoff, RelayCustomerMessage, StartHandoff
from switchboard_shared.contracts.routes import TENANT_HEADER
from switchboard_shared.deps import EndUser
from switchboard_shared.errors import AppError, ErrorCode

log = structlog.get_logger(__name__)


async def relay(runtime: Runtime, prepared: Prepared) -> None:
    """A human owns the conversation: the customer's message goes to the operator, the bot stays silent."""
    body = RelayCustomerMessage(
        conversation_id=prepared.conversation_id, message_id=prepared.user_message.id, text=prepared.text
    )
    try:
        await runtime.platform.downstream("integrations").json_request(
            "POST",
            "/internal/v1/handoffs/relay",
            json=body.model_dump(mode="json"),
            headers={TENANT_HEADER: prepared.tenant_id},
            idempotent=True,
            timeout=runtime.settings.integrations_timeout_seconds,
        )
    except AppError as exc:
        # The message is stored; operators see it in the conversation even when the relay is late.
        log.warning("relay_failed", conversation_id=prepared.conversation_id, error=exc.message)


async def start_handoff(
    runtime: Runtime,
    *,
    tenant_id: str,
    conversation_id: str,
    channel: str,
    end_user_id: str,
    external_key: str | None,
    window: list[WindowMessage],
    profile: EndUserProfile | None,
    create_ticket: bool,
    reason: str,
) -> HandoffInfo | None:
    """Open a handoff (and a ticket with the transcript) in integrations; None when it cannot be reached."""
    body = StartHandoff(
        conversation_id=conversation_id,
        channel=channel,  # type: ignore[arg-type]
        end_user_id=end_user_id,
        external_key=external_key,
        reason=reason[:1000],
        transcript=transcript_of(
            [(m.role, m.text) for m in window if m.role in ("user", "assistant", "operator")]
        ),
        profile=profile,
        create_ticket=create_ticket,
        notify_chat=False,  # chat switches the owner itself, in the same transaction as the answer
    )
    try:
        payload = await runtime.platform.downstream("integrations").json_request(
            "POST",
            "/internal/v1/handoffs",
            json=body.model_dump(mode="json"),
            headers={TENANT_HEADER: tenant_id},
            idempotent=False,
            timeout=runtime.settings.integrations_timeout_seconds,
        )
        handoff = Handoff.model_validate(payload)
    except (AppError, ValueError) as exc:
        log.warning("handoff_failed", conversation_id=conversation_id, error=str(exc)[:300])
        return None
    return HandoffInfo(
        reason=reason, handoff_id=handoff.id, ticket_id=handoff.ticket.id if handoff.ticket else None
    )


async def start_handoff_for(runtime: Runtime, prepared: Prepared, reason: str) -> HandoffInfo | None:
    """Open a handoff from a running turn (the owner changes when the turn's answer is stored)."""
    return await start_handoff(
        runtime,
        tenant_id=prepared.tenant_id,
        conversation_id=prepared.conversation_id,
        channel=prepared.channel,
        end_user_id=prepared.end_user_id,
        external_key=prepared.external_key,
        window=prepared.context,
        profile=prepared.profile,
        create_ticket=prepared.assistant.escalation.create_ticket,
        reason=reason,
    )


async def hand_off_now(runtime: Runtime, prepared: Prepared, handle: TurnHandle, reason: str) -> None:
    """Escalate before answering (an explicit request, frustration, a tenant rule) and say so."""
    info = await start_handoff_for(runtime, prepared, reason)
    answer = text(prepared.language, "handoff_started" if info else "handoff_failed")
    if info is not None:
        handle.put(HandoffPacket(handoff=info))
    await reply_with_system_text(
        runtime,
        prepared,
        handle,
        answer,
        generation_ms=0.0,
        handoff=info,
        handoff_reason=reason,
        meta={"escalation": reason},
    )


async def request_handoff(
    runtime: Runtime, *, tenant_id: str, conversation_id: str, end_user: EndUser | None, reason: str
) -> HandoffInfo:
    """The customer pressed "talk to a human": open the handoff and give the conversation to a human."""
    async with runtime.lock(conversation_id):
        async with runtime.sessionmaker() as session, session.begin():
            conversation = await conversations.get_or_404(
                session=session, tenant_id=tenant_id, conversation_id=conversation_id, end_user=end_user
            )
            if conversation.owner == Owner.HUMAN.value:
                return HandoffInfo(
                    reason="already with a human",
                    handoff_id=conversation.handoff_id,
                    ticket_id=conversation.ticket_id,
                )
            window = await runtime.window.load(session, conversation)
            profile = await conversations.end_user_profile(
                session=session, tenant_id=tenant_id, end_user_id=conversation.end_user_id
            )
            assistant = await assistant_service.load(session=session, tenant_id=tenant_id)
            fields = snapshot(conversation)
        info = await start_handoff(
            runtime,
            tenant_id=tenant_id,
            conversation_id=conversation_id,
            channel=fields["channel"],
            end_user_id=fields["end_user_id"],
            external_key=fields["external_key"],
            window=window,
            profile=profile,
            create_ticket=assistant.escalation.create_ticket,
            reason=reason,
        )
        if info is None:
            raise AppError(
                ErrorCode.UPSTREAM_UNAVAILABLE,
                "The support team cannot be reached right now; try again shortly.",
                headers={"Retry-After": "5"},
            )
        await _give_to_human(
            runtime, tenant_id=tenant_id, conversation_id=conversation_id, info=info, reason=reason
        )
        return info


async def _give_to_human(
    runtime: Runtime, *, tenant_id: str, conversation_id: str, info: HandoffInfo, reason: str
) -> None:
    async with runtime.sessionmaker() as session, session.begin():
        conversation = await conversations.get_or_404(
            session=session, tenant_id=tenant_id, conversation_id=conversation_id
        )
        conversations.change_owner(
            session=session,
            analytics=runtime.platform.analytics,
            conversation=conversation,
            owner=Owner.HUMAN,
            actor="customer",
            reason=reason,
            handoff_id=info.handoff_id,
            ticket_id=info.ticket_id,
        )
