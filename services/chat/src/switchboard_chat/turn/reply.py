"""The end of a turn: store the answer (and an owner change), update the window, emit ``answer_sent``, then
send the citations and the ``done`` packet."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from switchboard_chat.conversations import service as conversations
from switchboard_chat.conversations.models import MessageRow
from switchboard_chat.runtime import Runtime
from switchboard_chat.turn.intake import Prepared, ms_since
from switchboard_chat.turn.stream import TurnHandle
from switchboard_shared.contracts.analytics import EventType
from switchboard_shared.contracts.chat import (
    Citation,
    CitationPacket,
    ContextPassage,
    DonePacket,
    HandoffInfo,
    LatencySplit,
    Owner,
    TokenPacket,
    TurnResult,
    TurnUsage,
)


@dataclass
class Reply:
    """The assistant's answer to one customer message, as it is stored and sent."""

    answer: str
    retrieval_ms: float
    generation_ms: float
    streak: int
    meta: dict[str, Any]
    citations: list[Citation] = field(default_factory=list)
    provider: str | None = None
    no_answer: bool = False
    handoff: HandoffInfo | None = None
    handoff_reason: str | None = None
    crm_id: str | None = None
    # The passages the answer was given, shown to operators and services only.
    context: list[ContextPassage] | None = None


async def reply_with_system_text(
    runtime: Runtime,
    prepared: Prepared,
    handle: TurnHandle,
    answer: str,
    *,
    generation_ms: float,
    handoff: HandoffInfo | None,
    handoff_reason: str | None,
    meta: dict[str, Any],
) -> None:
    """Answer with one of the product's own texts (no passages, no provider) and finish the turn."""
    handle.put(TokenPacket(text=answer))
    await finish(
        runtime,
        prepared,
        handle,
        Reply(
            answer=answer,
            retrieval_ms=0.0,
            generation_ms=generation_ms,
            streak=prepared.unsupported_streak,
            meta=meta,
            handoff=handoff,
            handoff_reason=handoff_reason,
        ),
    )


async def finish(runtime: Runtime, prepared: Prepared, handle: TurnHandle, reply: Reply) -> None:
    """Store the answer and the owner change, update the window, emit events, send citations and done."""
    row, seq, owner = await _store(runtime, prepared, reply)
    await runtime.window.append(prepared.conversation_id, seq, prepared.window, [row])
    total_ms = ms_since(prepared.started)
    sources = sorted({c.document_id for c in reply.citations})
    runtime.platform.analytics.emit(
        EventType.ANSWER_SENT,
        tenant_id=prepared.tenant_id,
        conversation_id=prepared.conversation_id,
        end_user_id=prepared.end_user_id,
        channel=prepared.channel,
        properties={
            "message_id": row.id,
            "provider": reply.provider,
            "no_answer": reply.no_answer,
            "sources": sources,
            "kb_ids": reply.meta.get("kb_ids", []),
            "question": prepared.text,
            "latency_ms": {
                "retrieval": reply.retrieval_ms,
                "generation": reply.generation_ms,
                "total": total_ms,
            },
            "fallbacks": len(reply.meta.get("fallbacks", [])),
            "handoff": reply.handoff is not None,
            "language": prepared.language,
        },
    )
    for citation in reply.citations:
        handle.put(CitationPacket(citation=citation))
    handle.put(
        DonePacket(
            result=TurnResult(
                conversation_id=prepared.conversation_id,
                user_message=prepared.user_message,
                reply=conversations.message_out(row),
                owner=owner,
                handoff=reply.handoff,
                latency=LatencySplit(
                    retrieval_ms=reply.retrieval_ms, generation_ms=reply.generation_ms, total_ms=total_ms
                ),
                sources=sources,
                retrieved=reply.meta.get("retrieved", []),
                context=reply.context,
                support=reply.meta.get("support") if reply.context is not None else None,
                usage=TurnUsage.of(prepared.text, row.text, prepared.earlier_tokens),
            )
        )
    )


async def _store(runtime: Runtime, prepared: Prepared, reply: Reply) -> tuple[MessageRow, int, Owner]:
    """One transaction: the answer, the streak of unsupported answers, the handoff's owner change and a CRM
    id a verified lookup found; returns the stored answer, the conversation's last seq and its owner."""
    total_ms = ms_since(prepared.started)
    async with runtime.sessionmaker() as session, session.begin():
        conversation = await conversations.get_or_404(
            session=session,
            tenant_id=prepared.tenant_id,
            conversation_id=prepared.conversation_id,
            missing="The conversation was deleted during the turn.",
        )
        row = conversations.add_message(
            session=session,
            conversation=conversation,
            role="assistant",
            text=reply.answer,
            citations=[c.model_dump(mode="json") for c in reply.citations],
            provider=reply.provider,
            no_answer=reply.no_answer,
            retrieval_ms=reply.retrieval_ms,
            generation_ms=reply.generation_ms,
            total_ms=total_ms,
            reply_to=prepared.user_message.id,
            meta=reply.meta,
        )
        conversation.unsupported_streak = reply.streak
        if reply.handoff is not None:
            conversations.change_owner(
                session=session,
                analytics=runtime.platform.analytics,
                conversation=conversation,
                owner=Owner.HUMAN,
                actor="bot",
                reason=reply.handoff_reason or reply.handoff.reason,
                handoff_id=reply.handoff.handoff_id,
                ticket_id=reply.handoff.ticket_id,
            )
        crm_id = reply.crm_id
        if crm_id and prepared.verified and (prepared.profile is None or prepared.profile.crm_id != crm_id):
            await conversations.remember_crm_id(
                session=session, tenant_id=prepared.tenant_id, end_user_id=prepared.end_user_id, crm_id=crm_id
            )
        await session.flush()
        return row, conversation.last_seq, Owner(conversation.owner)
