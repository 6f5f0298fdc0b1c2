"""All SQL of conversations, messages, transitions, profiles, feedback, CSAT and the suggestion outbox."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard_chat.conversations.models import (
    OPENED_BY_INBOUND,
    ConversationRow,
    CsatRow,
    EndUserRow,
    FeedbackRow,
    MessageRow,
    SuggestionOutboxRow,
    TransitionRow,
    utcnow,
)


async def get_conversation(
    session: AsyncSession, *, tenant_id: str, conversation_id: str, for_update: bool = False
) -> ConversationRow | None:
    query = select(ConversationRow).where(
        ConversationRow.id == conversation_id, ConversationRow.tenant_id == tenant_id
    )
    if for_update:
        query = query.with_for_update()
    result: ConversationRow | None = (await session.execute(query)).scalar_one_or_none()
    return result


async def find_by_external_key(
    session: AsyncSession,
    *,
    tenant_id: str,
    channel: str,
    external_key: str,
    opened_by: str = OPENED_BY_INBOUND,
) -> ConversationRow | None:
    """The newest conversation with this key among those opened the given way: a messenger chat's among
    those integrations opened for it (a conversation opened through the public API never receives a
    messenger's messages, whatever its channel and key), or an API client's thread among those opened
    through the API."""
    query = (
        select(ConversationRow)
        .where(
            ConversationRow.tenant_id == tenant_id,
            ConversationRow.channel == channel,
            ConversationRow.external_key == external_key,
            ConversationRow.opened_by == opened_by,
        )
        .order_by(ConversationRow.created_at.desc())
        .limit(1)
    )
    result: ConversationRow | None = (await session.execute(query)).scalar_one_or_none()
    return result


def _list_filter(
    query: Select[Any],
    *,
    tenant_id: str,
    end_user_id: str | None,
    channel: str | None,
    status: str | None,
    owner: str | None,
    updated_after: datetime | None,
) -> Select[Any]:
    query = query.where(ConversationRow.tenant_id == tenant_id)
    if end_user_id is not None:
        query = query.where(ConversationRow.end_user_id == end_user_id)
    if channel is not None:
        query = query.where(ConversationRow.channel == channel)
    if status is not None:
        query = query.where(ConversationRow.status == status)
    if owner is not None:
        query = query.where(ConversationRow.owner == owner)
    if updated_after is not None:
        query = query.where(ConversationRow.updated_at > updated_after)
    return query


async def list_conversations(
    session: AsyncSession,
    *,
    tenant_id: str,
    end_user_id: str | None,
    channel: str | None,
    status: str | None,
    owner: str | None,
    updated_after: datetime | None,
    limit: int,
    offset: int,
) -> tuple[Sequence[ConversationRow], int]:
    filters: dict[str, Any] = {
        "tenant_id": tenant_id,
        "end_user_id": end_user_id,
        "channel": channel,
        "status": status,
        "owner": owner,
        "updated_after": updated_after,
    }
    total = (
        await session.execute(_list_filter(select(func.count(ConversationRow.id)), **filters))
    ).scalar_one()
    rows = (
        (
            await session.execute(
                _list_filter(select(ConversationRow), **filters)
                .order_by(ConversationRow.updated_at.desc(), ConversationRow.id.desc())
                .limit(limit)
                .offset(offset)
            )
        )
        .scalars()
        .all()
    )
    return rows, int(total)


async def messages(
    session: AsyncSession, *, conversation_id: str, after_seq: int = 0, last: int | None = None
) -> list[MessageRow]:
    query = select(MessageRow).where(
        MessageRow.conversation_id == conversation_id, MessageRow.seq > after_seq
    )
    if last is not None:
        rows = (await session.execute(query.order_by(MessageRow.seq.desc()).limit(last))).scalars().all()
        return list(reversed(rows))
    return list((await session.execute(query.order_by(MessageRow.seq))).scalars().all())


async def get_message(session: AsyncSession, *, conversation_id: str, message_id: str) -> MessageRow | None:
    query = select(MessageRow).where(
        MessageRow.id == message_id, MessageRow.conversation_id == conversation_id
    )
    result: MessageRow | None = (await session.execute(query)).scalar_one_or_none()
    return result


async def message_by_client_id(
    session: AsyncSession, *, conversation_id: str, client_message_id: str
) -> MessageRow | None:
    query = select(MessageRow).where(
        MessageRow.conversation_id == conversation_id, MessageRow.client_message_id == client_message_id
    )
    result: MessageRow | None = (await session.execute(query)).scalar_one_or_none()
    return result


async def reply_to(session: AsyncSession, *, conversation_id: str, message_id: str) -> MessageRow | None:
    query = select(MessageRow).where(
        MessageRow.conversation_id == conversation_id, MessageRow.reply_to == message_id
    )
    result: MessageRow | None = (await session.execute(query.limit(1))).scalar_one_or_none()
    return result


def add_message(session: AsyncSession, conversation: ConversationRow, **values: Any) -> MessageRow:
    """Append a message: the conversation's sequence number orders it (callers hold the conversation lock)."""
    conversation.last_seq += 1
    now = utcnow()
    conversation.updated_at = now
    row = MessageRow(
        conversation_id=conversation.id,
        tenant_id=conversation.tenant_id,
        seq=conversation.last_seq,
        created_at=now,
        citations=values.pop("citations", []),
        meta=values.pop("meta", {}),
        no_answer=values.pop("no_answer", False),
        **values,
    )
    session.add(row)
    return row


def add_transition(
    session: AsyncSession,
    conversation: ConversationRow,
    *,
    field: str,
    to_value: str,
    actor: str,
    reason: str,
) -> TransitionRow:
    from_value = str(getattr(conversation, field))
    setattr(conversation, field, to_value)
    conversation.updated_at = utcnow()
    row = TransitionRow(
        conversation_id=conversation.id,
        tenant_id=conversation.tenant_id,
        field=field,
        from_value=from_value,
        to_value=to_value,
        actor=actor,
        reason=reason,
        created_at=utcnow(),
    )
    session.add(row)
    return row


async def transitions(session: AsyncSession, *, conversation_id: str) -> Sequence[TransitionRow]:
    query = (
        select(TransitionRow)
        .where(TransitionRow.conversation_id == conversation_id)
        .order_by(TransitionRow.created_at, TransitionRow.id)
    )
    return (await session.execute(query)).scalars().all()


async def get_profile(session: AsyncSession, *, tenant_id: str, end_user_id: str) -> EndUserRow | None:
    query = select(EndUserRow).where(EndUserRow.tenant_id == tenant_id, EndUserRow.end_user_id == end_user_id)
    result: EndUserRow | None = (await session.execute(query)).scalar_one_or_none()
    return result


async def upsert_profile(
    session: AsyncSession, *, tenant_id: str, end_user_id: str, values: dict[str, Any]
) -> EndUserRow:
    row = await get_profile(session, tenant_id=tenant_id, end_user_id=end_user_id)
    if row is None:
        row = EndUserRow(tenant_id=tenant_id, end_user_id=end_user_id)
        session.add(row)
    for key, value in values.items():
        if value is not None:
            setattr(row, key, value)
    row.updated_at = utcnow()
    return row


async def feedback_for(session: AsyncSession, *, message_id: str) -> FeedbackRow | None:
    query = select(FeedbackRow).where(FeedbackRow.message_id == message_id)
    result: FeedbackRow | None = (await session.execute(query)).scalar_one_or_none()
    return result


async def csat_for(session: AsyncSession, *, conversation_id: str) -> CsatRow | None:
    query = select(CsatRow).where(CsatRow.conversation_id == conversation_id)
    result: CsatRow | None = (await session.execute(query)).scalar_one_or_none()
    return result


async def thumbs_down(session: AsyncSession, *, conversation_id: str) -> set[str]:
    """Ids of the conversation's answers the customer rated down."""
    result = await session.execute(
        select(FeedbackRow.message_id).where(
            FeedbackRow.conversation_id == conversation_id, FeedbackRow.rating == "down"
        )
    )
    return set(result.scalars())


async def enqueue_suggestions(session: AsyncSession, conversation: ConversationRow) -> None:
    """Put the conversation in the suggestion outbox, due now (again, if it was resolved before)."""
    entry = await session.get(SuggestionOutboxRow, conversation.id)
    if entry is None:
        session.add(SuggestionOutboxRow(conversation_id=conversation.id, tenant_id=conversation.tenant_id))
    else:
        entry.due_at, entry.attempts, entry.last_error = utcnow(), 0, None


async def due_suggestions(session: AsyncSession, *, limit: int) -> Sequence[SuggestionOutboxRow]:
    rows = await session.scalars(
        select(SuggestionOutboxRow)
        .where(SuggestionOutboxRow.due_at <= utcnow())
        .order_by(SuggestionOutboxRow.due_at)
        .limit(limit)
    )
    return rows.all()


async def claim_suggestions(
    session: AsyncSession, *, conversation_id: str, lease_until: datetime
) -> SuggestionOutboxRow | None:
    """Take a due outbox entry for one attempt (its due time moves to ``lease_until``, so other replicas leave
    it alone until then); None when it is not due or another replica took it first."""
    entry = await session.get(SuggestionOutboxRow, conversation_id, populate_existing=True)
    if entry is None:
        return None
    claimed = await session.execute(
        update(SuggestionOutboxRow)
        .where(
            SuggestionOutboxRow.conversation_id == conversation_id,
            SuggestionOutboxRow.due_at == entry.due_at,
            SuggestionOutboxRow.due_at <= utcnow(),
        )
        .values(due_at=lease_until)
        .execution_options(synchronize_session=False)
    )
    return entry if getattr(claimed, "rowcount", 0) == 1 else None


async def suggestions_sent(session: AsyncSession, *, conversation_id: str, lease_until: datetime) -> None:
    """Remove the outbox entry of an attempt that delivered everything, unless a new resolution re-armed it
    meanwhile (its due time is then no longer the attempt's lease)."""
    await session.execute(
        delete(SuggestionOutboxRow).where(
            SuggestionOutboxRow.conversation_id == conversation_id, SuggestionOutboxRow.due_at == lease_until
        )
    )


async def suggestions_failed(
    session: AsyncSession,
    *,
    conversation_id: str,
    lease_until: datetime,
    attempts: int,
    retry_at: datetime,
    error: str,
) -> None:
    await session.execute(
        update(SuggestionOutboxRow)
        .where(
            SuggestionOutboxRow.conversation_id == conversation_id, SuggestionOutboxRow.due_at == lease_until
        )
        .values(attempts=attempts, due_at=retry_at, last_error=error[:300])
    )
