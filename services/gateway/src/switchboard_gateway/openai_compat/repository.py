"""All SQL of completion threads (``user`` / metadata key → chat conversation)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard_gateway.openai_compat.models import CompletionThreadRow


async def find(session: AsyncSession, *, tenant_id: str, thread_key: str) -> CompletionThreadRow | None:
    return await session.scalar(
        select(CompletionThreadRow).where(
            CompletionThreadRow.tenant_id == tenant_id, CompletionThreadRow.thread_key == thread_key
        )
    )


async def save(session: AsyncSession, *, tenant_id: str, thread_key: str, conversation_id: str) -> None:
    now = datetime.now(UTC)
    thread = await find(session, tenant_id=tenant_id, thread_key=thread_key)
    if thread is not None:
        thread.conversation_id = conversation_id
        thread.updated_at = now
        await session.flush()
        return
    session.add(
        CompletionThreadRow(
            id=uuid.uuid4().hex,
            tenant_id=tenant_id,
            thread_key=thread_key,
            conversation_id=conversation_id,
            created_at=now,
            updated_at=now,
        )
    )
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()  # a concurrent call created it first; either conversation serves
