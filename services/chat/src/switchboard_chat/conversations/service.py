"""Conversation logic: create, read, list, messages, owner/status transitions, feedback, CSAT, operator messages,
the conversation a messenger's message belongs to."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard_chat.assistant import service as assistant_service
from switchboard_chat.conversations import repository
from switchboard_chat.conversations.models import (
    OPENED_BY_API,
    OPENED_BY_INBOUND,
    ConversationRow,
    CsatRow,
    EndUserRow,
    FeedbackRow,
    MessageRow,
    TransitionRow,
)
from switchboard_shared.analytics_client import AnalyticsClient
from switchboard_shared.contracts.analytics import EventType
from switchboard_shared.contracts.chat import (
    MESSENGER_CHANNELS,
    Channel,
    Citation,
    Conversation,
    ConversationStatus,
    ConversationTransition,
    ConversationWithMessages,
    CreateConversation,
    Csat,
    EndUserProfile,
    Feedback,
    InboundMessage,
    Message,
    OperatorMessage,
    Owner,
    OwnerChange,
    Role,
    StatusChange,
)
from switchboard_shared.contracts.routes import WIDGET_SCOPE
from switchboard_shared.deps import EndUser
from switchboard_shared.errors import AppError, ErrorCode

if TYPE_CHECKING:
    from switchboard_chat.runtime import Runtime

log = structlog.get_logger(__name__)


def profile_of(row: EndUserRow | None) -> EndUserProfile | None:
    if row is None:
        return None
    return EndUserProfile(
        name=row.name, email=row.email, phone=row.phone, crm_id=row.crm_id, locale=row.locale
    )


def conversation_out(row: ConversationRow, profile: EndUserRow | None = None) -> Conversation:
    return Conversation(
        id=row.id,
        tenant_id=row.tenant_id,
        channel=Channel(row.channel),
        end_user_id=row.end_user_id,
        verified=row.verified,
        owner=Owner(row.owner),
        status=ConversationStatus(row.status),
        created_at=row.created_at,
        updated_at=row.updated_at,
        external_key=row.external_key,
        profile=profile_of(profile),
    )


def message_out(row: MessageRow) -> Message:
    return Message(
        id=row.id,
        conversation_id=row.conversation_id,
        role=Role(row.role),
        text=row.text,
        created_at=row.created_at,
        citations=[Citation.model_validate(item) for item in row.citations or []],
        provider=row.provider,
        no_answer=row.no_answer,
        operator_id=row.operator_id,
    )


def transition_out(row: TransitionRow) -> ConversationTransition:
    return ConversationTransition(
        field="owner" if row.field == "owner" else "status",
        from_value=row.from_value,
        to_value=row.to_value,
        actor=row.actor,
        reason=row.reason,
        created_at=row.created_at,
    )


async def get_or_404(
    *,
    session: AsyncSession,
    tenant_id: str,
    conversation_id: str,
    end_user: EndUser | None = None,
    missing: str = "No such conversation.",
) -> ConversationRow:
    """The tenant's conversation; a widget end user only sees their own (else 404, not 403)."""
    row = await repository.get_conversation(session, tenant_id=tenant_id, conversation_id=conversation_id)
    if row is None or (end_user is not None and end_user.id is not None and row.end_user_id != end_user.id):
        raise AppError(ErrorCode.NOT_FOUND, missing)
    return row


async def message_by_client_id(
    *, session: AsyncSession, conversation_id: str, client_message_id: str
) -> MessageRow | None:
    """The message already stored under the client's id (a retried request), if any."""
    return await repository.message_by_client_id(
        session, conversation_id=conversation_id, client_message_id=client_message_id
    )


async def reply_to(*, session: AsyncSession, conversation_id: str, message_id: str) -> MessageRow | None:
    """The answer stored for a customer message, if any."""
    return await repository.reply_to(session, conversation_id=conversation_id, message_id=message_id)


async def last_message(*, session: AsyncSession, conversation_id: str) -> MessageRow | None:
    rows = await repository.messages(session, conversation_id=conversation_id, last=1)
    return rows[0] if rows else None


def add_message(
    *, session: AsyncSession, conversation: ConversationRow, role: str, text: str, **values: Any
) -> MessageRow:
    """Append a message in the conversation's order (the caller holds the conversation's lock)."""
    return repository.add_message(session, conversation, role=role, text=text, **values)


async def end_user_profile(
    *, session: AsyncSession, tenant_id: str, end_user_id: str
) -> EndUserProfile | None:
    return profile_of(await repository.get_profile(session, tenant_id=tenant_id, end_user_id=end_user_id))


async def remember_crm_id(*, session: AsyncSession, tenant_id: str, end_user_id: str, crm_id: str) -> None:
    """The CRM customer a verified lookup found, for the end user's later conversations."""
    await repository.upsert_profile(
        session, tenant_id=tenant_id, end_user_id=end_user_id, values={"crm_id": crm_id}
    )


async def open_or_resume(
    *,
    session: AsyncSession,
    analytics: AnalyticsClient,
    tenant_id: str,
    body: CreateConversation,
    end_user: EndUser,
    scope: str | None,
    opened_by: str = OPENED_BY_API,
    read_profile: bool = True,
) -> tuple[Conversation, bool]:
    """A new conversation, or with ``resume`` the newest one opened the same way with the same key and
    channel (an API client's thread: its history stays here); True when it was resumed. ``read_profile``
    False: a resumed conversation comes without the end user's profile (a caller that needs only its id)."""
    if end_user.id is not None and end_user.id != body.end_user_id:
        raise AppError(ErrorCode.FORBIDDEN, "A widget user can only open conversations for themselves.")
    channel = _channel_of_new_conversation(body, scope=scope, opened_by=opened_by)
    if body.resume:
        if body.external_key is None:
            raise AppError(ErrorCode.VALIDATION_ERROR, "resume needs the external_key of the conversation.")
        kept = await repository.find_by_external_key(
            session,
            tenant_id=tenant_id,
            channel=channel.value,
            external_key=body.external_key,
            opened_by=opened_by,
        )
        if kept is not None:
            profile = (
                await repository.get_profile(session, tenant_id=tenant_id, end_user_id=kept.end_user_id)
                if read_profile
                else None
            )
            return conversation_out(kept, profile), True
    if scope is not None and body.profile is not None and (body.profile.email or body.profile.crm_id):
        raise AppError(
            ErrorCode.VALIDATION_ERROR,
            "profile.email and profile.crm_id cannot be set here: who the customer is comes only from the "
            "identity token's claims (X-End-User-Token: email, crm_id).",
        )
    # Only the gateway's header can vouch for an identity coming through the widget.
    verified = end_user.verified if end_user.id is not None else body.verified
    row = ConversationRow(
        tenant_id=tenant_id,
        channel=channel.value,
        opened_by=opened_by,
        end_user_id=body.end_user_id,
        verified=verified,
        external_key=body.external_key,
        status=ConversationStatus.OPEN.value,
        owner=Owner.BOT.value,
        last_seq=0,
        unsupported_streak=0,
        meta=body.metadata,
    )
    session.add(row)
    profile = await _profile_for_new_conversation(session=session, tenant_id=tenant_id, body=body)
    await session.flush()
    await _greet(session=session, conversation=row, locale=body.profile.locale if body.profile else None)
    analytics.emit(
        EventType.CONVERSATION_STARTED,
        tenant_id=tenant_id,
        conversation_id=row.id,
        end_user_id=row.end_user_id,
        channel=row.channel,
        properties={"verified": verified},
    )
    return conversation_out(row, profile), False


async def _profile_for_new_conversation(
    *, session: AsyncSession, tenant_id: str, body: CreateConversation
) -> EndUserRow | None:
    """The end user's stored profile, updated with the one the new conversation brings."""
    if body.profile is not None:
        return await repository.upsert_profile(
            session, tenant_id=tenant_id, end_user_id=body.end_user_id, values=body.profile.model_dump()
        )
    return await repository.get_profile(session, tenant_id=tenant_id, end_user_id=body.end_user_id)


def _channel_of_new_conversation(body: CreateConversation, *, scope: str | None, opened_by: str) -> Channel:
    """A messenger conversation is opened only by integrations for a verified webhook (its chat key decides
    where the messenger's messages go); a widget key opens only web conversations, without a chat key."""
    if opened_by == OPENED_BY_INBOUND:
        return body.channel
    if body.channel in MESSENGER_CHANNELS:
        raise AppError(
            ErrorCode.FORBIDDEN,
            f"A {body.channel.value} conversation is opened only by its channel's verified webhook.",
        )
    if scope == WIDGET_SCOPE:
        if "channel" in body.model_fields_set and body.channel is not Channel.WEB:
            raise AppError(ErrorCode.FORBIDDEN, "A widget key opens only web conversations.")
        if body.external_key is not None:
            raise AppError(ErrorCode.FORBIDDEN, "A widget key cannot set a conversation's external_key.")
        return Channel.WEB
    return body.channel


async def _greet(*, session: AsyncSession, conversation: ConversationRow, locale: str | None) -> None:
    """The tenant's greeting, in the customer's language when there is one for it, opens the conversation."""
    assistant = await assistant_service.load(session=session, tenant_id=conversation.tenant_id)
    if not assistant.greeting:
        return
    language = (locale or "")[:2].lower()
    if language not in assistant.greeting:
        language = next((lang for lang in assistant.languages if lang in assistant.greeting), "")
    greeting = assistant.greeting.get(language) or next(iter(assistant.greeting.values()))
    repository.add_message(session, conversation, role="assistant", text=greeting, meta={"greeting": True})
    await session.flush()


async def read(
    *, session: AsyncSession, tenant_id: str, conversation_id: str, end_user: EndUser, after: str | None
) -> ConversationWithMessages:
    row = await get_or_404(
        session=session, tenant_id=tenant_id, conversation_id=conversation_id, end_user=end_user
    )
    after_seq = 0
    if after is not None:
        anchor = await repository.get_message(session, conversation_id=row.id, message_id=after)
        if anchor is None:
            raise AppError(ErrorCode.NOT_FOUND, "No such message in this conversation (after=).")
        after_seq = anchor.seq
    messages = await repository.messages(session, conversation_id=row.id, after_seq=after_seq)
    profile = await repository.get_profile(session, tenant_id=tenant_id, end_user_id=row.end_user_id)
    return ConversationWithMessages(
        **conversation_out(row, profile).model_dump(), messages=[message_out(m) for m in messages]
    )


async def list_page(
    *,
    session: AsyncSession,
    tenant_id: str,
    end_user: EndUser,
    end_user_id: str | None,
    channel: Channel | None,
    status: ConversationStatus | None,
    owner: Owner | None,
    updated_after: datetime | None,
    limit: int,
    offset: int,
) -> tuple[list[Conversation], int]:
    if end_user.id is not None:
        end_user_id = end_user.id
    rows, total = await repository.list_conversations(
        session,
        tenant_id=tenant_id,
        end_user_id=end_user_id,
        channel=channel.value if channel else None,
        status=status.value if status else None,
        owner=owner.value if owner else None,
        updated_after=updated_after,
        limit=limit,
        offset=offset,
    )
    return [conversation_out(row) for row in rows], total


def change_owner(
    *,
    session: AsyncSession,
    analytics: AnalyticsClient,
    conversation: ConversationRow,
    owner: Owner,
    actor: str,
    reason: str,
    handoff_id: str | None = None,
    ticket_id: str | None = None,
) -> bool:
    """Switch bot ↔ human, recording who and why; False when it already was that owner."""
    if conversation.owner == owner.value:
        return False
    repository.add_transition(
        session, conversation, field="owner", to_value=owner.value, actor=actor, reason=reason
    )
    common: dict[str, Any] = {
        "tenant_id": conversation.tenant_id,
        "conversation_id": conversation.id,
        "end_user_id": conversation.end_user_id,
        "channel": conversation.channel,
    }
    if owner is Owner.HUMAN:
        conversation.handoff_id = handoff_id or conversation.handoff_id
        conversation.ticket_id = ticket_id or conversation.ticket_id
        analytics.emit(
            EventType.HANDOFF,
            **common,
            properties={"reason": reason, "actor": actor, "handoff_id": conversation.handoff_id},
        )
    else:
        conversation.unsupported_streak = 0
        analytics.emit(
            EventType.HANDOFF_RETURNED,
            **common,
            properties={"actor": actor, "reason": reason, "handoff_id": conversation.handoff_id},
        )
        conversation.handoff_id = None
    return True


def change_status(
    *,
    session: AsyncSession,
    analytics: AnalyticsClient,
    conversation: ConversationRow,
    status: ConversationStatus,
    actor: str,
    reason: str,
) -> bool:
    """Resolve or reopen. Resolving hands the conversation back to the bot for any later message."""
    if conversation.status == status.value:
        return False
    repository.add_transition(
        session, conversation, field="status", to_value=status.value, actor=actor, reason=reason
    )
    if status is ConversationStatus.RESOLVED:
        if conversation.owner != Owner.BOT.value:
            change_owner(
                session=session,
                analytics=analytics,
                conversation=conversation,
                owner=Owner.BOT,
                actor=actor,
                reason="resolved",
            )
        analytics.emit(
            EventType.CONVERSATION_RESOLVED,
            tenant_id=conversation.tenant_id,
            conversation_id=conversation.id,
            end_user_id=conversation.end_user_id,
            channel=conversation.channel,
            properties={
                "by": "bot" if conversation.owner == "bot" and conversation.handoff_id is None else "human",
                "actor": actor,
                "reason": reason,
                "messages": conversation.last_seq,
            },
        )
    return True


async def transitions(
    *, session: AsyncSession, conversation: ConversationRow
) -> list[ConversationTransition]:
    return [
        transition_out(row) for row in await repository.transitions(session, conversation_id=conversation.id)
    ]


async def record_feedback(
    *, session: AsyncSession, analytics: AnalyticsClient, conversation: ConversationRow, body: Feedback
) -> None:
    message = await repository.get_message(
        session, conversation_id=conversation.id, message_id=body.message_id
    )
    if message is None or message.role != Role.ASSISTANT.value:
        raise AppError(ErrorCode.NOT_FOUND, "No such answer in this conversation.")
    row = await repository.feedback_for(session, message_id=message.id)
    if row is None:
        session.add(
            FeedbackRow(
                conversation_id=conversation.id,
                message_id=message.id,
                tenant_id=conversation.tenant_id,
                rating=body.rating,
                comment=body.comment,
            )
        )
    else:
        row.rating = body.rating
        row.comment = body.comment
    await session.flush()
    asked = (
        await repository.get_message(session, conversation_id=conversation.id, message_id=message.reply_to)
        if message.reply_to
        else None
    )
    analytics.emit(
        EventType.FEEDBACK,
        tenant_id=conversation.tenant_id,
        conversation_id=conversation.id,
        end_user_id=conversation.end_user_id,
        channel=conversation.channel,
        properties={
            "message_id": message.id,
            "rating": body.rating,
            "has_comment": bool(body.comment),
            "provider": message.provider,
            "no_answer": message.no_answer,
            "sources": sorted({c.get("document_id", "") for c in message.citations or []}),
            # What was asked and where the answer came from: the content-gap report of a thumbs-down.
            "question": asked.text if asked is not None else None,
            "kb_ids": (message.meta or {}).get("kb_ids", []),
        },
    )


async def record_csat(
    *, session: AsyncSession, analytics: AnalyticsClient, conversation: ConversationRow, body: Csat
) -> None:
    row = await repository.csat_for(session, conversation_id=conversation.id)
    if row is None:
        session.add(
            CsatRow(
                conversation_id=conversation.id,
                tenant_id=conversation.tenant_id,
                score=body.score,
                comment=body.comment,
            )
        )
    else:
        row.score = body.score
        row.comment = body.comment
    await session.flush()
    analytics.emit(
        EventType.CSAT,
        tenant_id=conversation.tenant_id,
        conversation_id=conversation.id,
        end_user_id=conversation.end_user_id,
        channel=conversation.channel,
        properties={"score": body.score, "has_comment": bool(body.comment), "owner": conversation.owner},
    )


def require_operator(end_user: EndUser) -> None:
    """Operators and services only: a widget end user may not do this."""
    if end_user.id is not None:
        raise AppError(ErrorCode.FORBIDDEN, "Only operators and services may do this.")


async def transition(
    *,
    session: AsyncSession,
    analytics: AnalyticsClient,
    tenant_id: str,
    conversation_id: str,
    change: OwnerChange | StatusChange,
) -> tuple[Conversation, bool]:
    """An operator's or a service's owner or status change, recorded with who and why; and whether it
    changed anything."""
    conversation = await get_or_404(session=session, tenant_id=tenant_id, conversation_id=conversation_id)
    if isinstance(change, OwnerChange):
        changed = change_owner(
            session=session,
            analytics=analytics,
            conversation=conversation,
            owner=change.owner,
            actor=change.actor,
            reason=change.reason,
        )
    else:
        changed = change_status(
            session=session,
            analytics=analytics,
            conversation=conversation,
            status=change.status,
            actor=change.actor,
            reason=change.reason,
        )
        if changed and change.status is ConversationStatus.RESOLVED:
            # What operators answered in it goes to retrieval as suggestions, through the outbox (in this
            # transaction, so a resolution is never stored without it).
            await repository.enqueue_suggestions(session, conversation)
    await session.flush()
    return conversation_out(conversation), changed


async def open_inbound(
    *,
    session: AsyncSession,
    analytics: AnalyticsClient,
    tenant_id: str,
    body: InboundMessage,
    end_user: EndUser,
) -> str:
    """The id of the messenger chat's conversation among those ``/inbound`` opened, opened when there is
    none (a conversation opened through the public API never receives a messenger's messages). Every
    messenger message comes this way, and its turn reads the profile: it is not read here too."""
    conversation, _ = await open_or_resume(
        session=session,
        analytics=analytics,
        tenant_id=tenant_id,
        body=CreateConversation(
            channel=body.channel,
            end_user_id=body.end_user_id,
            verified=False,
            profile=body.profile,
            external_key=body.external_key,
            resume=True,
        ),
        end_user=end_user,
        scope=None,
        opened_by=OPENED_BY_INBOUND,
        read_profile=False,
    )
    return conversation.id


async def post_operator_message(
    *, runtime: Runtime, tenant_id: str, conversation_id: str, body: OperatorMessage
) -> Message:
    """An operator's reply (from integrations): stored in order with the customer's messages, under the
    conversation's lock; a repeated ``idempotency_key`` returns the stored message."""
    async with runtime.lock(conversation_id):
        async with runtime.sessionmaker() as session, session.begin():
            conversation = await get_or_404(
                session=session, tenant_id=tenant_id, conversation_id=conversation_id
            )
            if body.idempotency_key:
                existing = await repository.message_by_client_id(
                    session, conversation_id=conversation_id, client_message_id=body.idempotency_key
                )
                if existing is not None:
                    return message_out(existing)
            window = await runtime.window.load(session, conversation)
            row = repository.add_message(
                session,
                conversation,
                role="operator",
                text=body.text,
                operator_id=body.operator_id,
                client_message_id=body.idempotency_key,
            )
            await session.flush()
            seq = conversation.last_seq
            channel = conversation.channel
            end_user_id = conversation.end_user_id
        await runtime.window.append(conversation_id, seq, window, [row])
    runtime.platform.analytics.emit(
        EventType.OPERATOR_REPLIED,
        tenant_id=tenant_id,
        conversation_id=conversation_id,
        end_user_id=end_user_id,
        channel=channel,
        properties={"operator_id": body.operator_id, "message_id": row.id},
    )
    return message_out(row)
