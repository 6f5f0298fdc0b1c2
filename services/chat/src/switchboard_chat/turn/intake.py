"""Phase one of a turn, under the conversation's lock: the customer message is stored (or found again, for a
repeated ``client_message_id``) and everything the answer needs is read, before anything slow happens."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from switchboard_chat.assistant import service as assistant_service
from switchboard_chat.conversations import service as conversations
from switchboard_chat.conversations.models import ConversationRow, MessageRow
from switchboard_chat.conversations.window import WindowMessage
from switchboard_chat.runtime import Runtime
from switchboard_chat.tools.service import PendingAction
from switchboard_shared.contracts.analytics import EventType
from switchboard_shared.contracts.chat import (
    AssistantSettings,
    ConversationStatus,
    EarlierTurn,
    EndUserProfile,
    LatencySplit,
    Message,
    Owner,
    TurnResult,
)
from switchboard_shared.deps import EndUser
from switchboard_shared.language import detect_language
from switchboard_shared.tokens import estimate_tokens


@dataclass(slots=True)
class TurnInput:
    tenant_id: str
    conversation_id: str
    text: str
    end_user: EndUser | None = None
    verified: bool | None = None
    client_message_id: str | None = None
    providers: list[str] | None = None
    history: list[EarlierTurn] = field(default_factory=list)
    scope: str | None = None


@dataclass
class Prepared:
    tenant_id: str
    conversation_id: str
    channel: str
    end_user_id: str
    external_key: str | None
    owner: str
    unsupported_streak: int
    verified: bool
    claimed_email: str | None
    claimed_crm_id: str | None
    pending_action: PendingAction | None
    text: str
    user_message: Message
    window: list[WindowMessage]
    assistant: AssistantSettings
    profile: EndUserProfile | None
    chain: list[str]
    language: str
    started: float
    # The caller is an operator or a service (a server or admin key): the turn's result shows the passages
    # the answer was given and its support, for evaluation and debugging.
    operator: bool = False
    earlier: list[WindowMessage] = field(default_factory=list)
    earlier_tokens: int = 0  # of every earlier turn the client sent, for the turn's usage

    @property
    def context(self) -> list[WindowMessage]:
        """The turns the answer sees: a stateless client's earlier turns (not stored), then the window."""
        return [*self.earlier, *self.window]


@dataclass
class _Stored:
    """What phase one read and wrote inside its transaction."""

    snapshot: dict[str, Any]
    seq: int
    user_row: MessageRow
    window: list[WindowMessage]
    assistant: AssistantSettings
    chain: list[str]
    pending: PendingAction | None
    verified: bool
    profile: EndUserProfile | None


def ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def snapshot(row: ConversationRow) -> dict[str, Any]:
    """The conversation's fields the turn keeps after its transaction ends."""
    return {
        "tenant_id": row.tenant_id,
        "conversation_id": row.id,
        "channel": row.channel,
        "end_user_id": row.end_user_id,
        "external_key": row.external_key,
        "owner": row.owner,
        "unsupported_streak": row.unsupported_streak,
    }


async def prepare(runtime: Runtime, turn: TurnInput, started: float) -> Prepared | TurnResult:
    """Store the customer message and read what the answer needs; the stored outcome for a repeated message.

    ``started`` is when the request reached the turn: waiting for the lock counts in the turn's total."""
    async with runtime.sessionmaker() as session, session.begin():
        conversation = await conversations.get_or_404(
            session=session,
            tenant_id=turn.tenant_id,
            conversation_id=turn.conversation_id,
            end_user=turn.end_user,
        )
        if turn.client_message_id:
            existing = await conversations.message_by_client_id(
                session=session, conversation_id=conversation.id, client_message_id=turn.client_message_id
            )
            if existing is not None:
                return await replay(session, conversation, existing)
        stored = await _store(runtime, session, conversation, turn)
    window = await runtime.window.append(conversation.id, stored.seq, stored.window, [stored.user_row])
    _emit_received(runtime, stored, chars=len(turn.text))
    claims = turn.end_user if turn.end_user is not None and turn.end_user.verified else None
    return Prepared(
        **stored.snapshot,
        verified=stored.verified,
        claimed_email=claims.email if claims else None,
        claimed_crm_id=claims.crm_id if claims else None,
        pending_action=stored.pending,
        text=turn.text,
        user_message=conversations.message_out(stored.user_row),
        window=window,
        assistant=stored.assistant,
        profile=stored.profile,
        chain=stored.chain,
        language=detect_language(turn.text, stored.assistant.languages),
        started=started,
        operator=turn.end_user is not None and turn.end_user.id is None,
        earlier=[
            WindowMessage(id="", seq=0, role=earlier.role, text=earlier.text)
            for earlier in turn.history[-runtime.settings.history_window :]
        ],
        earlier_tokens=sum(estimate_tokens(earlier.text) for earlier in turn.history),
    )


async def _store(
    runtime: Runtime, session: AsyncSession, conversation: ConversationRow, turn: TurnInput
) -> _Stored:
    """Inside phase one's transaction: reopen a resolved conversation and store the customer message."""
    assistant = await assistant_service.load(session=session, tenant_id=turn.tenant_id)
    chain = runtime.registry.chain_names(assistant, turn.providers, scope=turn.scope)
    window = await runtime.window.load(session, conversation)
    if conversation.status == ConversationStatus.RESOLVED.value:
        conversations.change_status(
            session=session,
            analytics=runtime.platform.analytics,
            conversation=conversation,
            status=ConversationStatus.OPEN,
            actor="customer",
            reason="a new customer message reopened the conversation",
        )
    pending = await _pending_action(session, conversation, window)
    verified = _verified(turn, conversation)
    user_row = conversations.add_message(
        session=session,
        conversation=conversation,
        role="user",
        text=turn.text,
        client_message_id=turn.client_message_id,
        meta={"verified": verified},
    )
    profile = await conversations.end_user_profile(
        session=session, tenant_id=turn.tenant_id, end_user_id=conversation.end_user_id
    )
    await session.flush()
    return _Stored(
        snapshot=snapshot(conversation),
        seq=conversation.last_seq,
        user_row=user_row,
        window=window,
        assistant=assistant,
        chain=chain,
        pending=pending,
        verified=verified,
        profile=profile,
    )


async def _pending_action(
    session: AsyncSession, conversation: ConversationRow, window: list[WindowMessage]
) -> PendingAction | None:
    """The action the assistant's last message asked the customer to confirm. The window ends with the
    conversation's last message (it is read or rebuilt at the conversation's last seq), so the database is
    asked only when the window keeps no messages."""
    if window:
        last = window[-1]
        return PendingAction.from_meta(last.pending_action) if last.role == "assistant" else None
    previous = await conversations.last_message(session=session, conversation_id=conversation.id)
    if previous is None or previous.role != "assistant":
        return None
    return PendingAction.from_meta((previous.meta or {}).get("pending_action"))


def _emit_received(runtime: Runtime, stored: _Stored, *, chars: int) -> None:
    fields = stored.snapshot
    runtime.platform.analytics.emit(
        EventType.MESSAGE_RECEIVED,
        tenant_id=fields["tenant_id"],
        conversation_id=fields["conversation_id"],
        end_user_id=fields["end_user_id"],
        channel=fields["channel"],
        properties={"message_id": stored.user_row.id, "chars": chars, "owner": fields["owner"]},
    )


def _verified(turn: TurnInput, conversation: ConversationRow) -> bool:
    """A widget user's identity is the gateway's word; else the caller's, else the conversation's."""
    if turn.end_user is not None and turn.end_user.id is not None:
        return turn.end_user.verified
    if turn.verified is not None:
        return turn.verified
    return conversation.verified


async def replay(session: AsyncSession, conversation: ConversationRow, user_row: MessageRow) -> TurnResult:
    """The same client_message_id again: the stored outcome, without a second answer."""
    reply = await conversations.reply_to(
        session=session, conversation_id=conversation.id, message_id=user_row.id
    )
    return TurnResult(
        conversation_id=conversation.id,
        user_message=conversations.message_out(user_row),
        reply=conversations.message_out(reply) if reply else None,
        owner=Owner(conversation.owner),
        latency=LatencySplit(
            retrieval_ms=reply.retrieval_ms or 0.0 if reply else 0.0,
            generation_ms=reply.generation_ms or 0.0 if reply else 0.0,
            total_ms=reply.total_ms or 0.0 if reply else 0.0,
        ),
        sources=sorted({c["document_id"] for c in (reply.citations if reply else [])}),
        retrieved=list((reply.meta or {}).get("retrieved", [])) if reply else [],
    )
