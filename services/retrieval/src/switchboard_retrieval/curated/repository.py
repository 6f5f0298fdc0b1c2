"""SQL of curated answers and the tenant's curated settings; every query is scoped by tenant."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard_retrieval.curated.models import CuratedAnswerRow, CuratedSettingsRow, CuratedSuggestionRow
from switchboard_shared.errors import AppError, ErrorCode


async def get_or_404(session: AsyncSession, *, tenant_id: str, answer_id: str) -> CuratedAnswerRow:
    entry = await session.get(CuratedAnswerRow, answer_id)
    if entry is None or entry.tenant_id != tenant_id:
        raise AppError(ErrorCode.NOT_FOUND, f"Curated answer {answer_id} not found.")
    return entry


async def all_entries(session: AsyncSession, *, tenant_id: str) -> Sequence[CuratedAnswerRow]:
    result = await session.execute(
        select(CuratedAnswerRow)
        .where(CuratedAnswerRow.tenant_id == tenant_id)
        .order_by(CuratedAnswerRow.created_at)
    )
    return list(result.scalars())


async def list_entries(
    session: AsyncSession,
    *,
    tenant_id: str,
    kb_id: str | None,
    language: str | None,
    tag: str | None,
    limit: int,
    offset: int,
) -> tuple[Sequence[CuratedAnswerRow], int]:
    query = select(CuratedAnswerRow).where(CuratedAnswerRow.tenant_id == tenant_id)
    if kb_id is not None:
        query = query.where(CuratedAnswerRow.kb_id == kb_id)
    if language is not None:
        query = query.where(CuratedAnswerRow.language == language)
    rows = list(
        (await session.execute(query.order_by(CuratedAnswerRow.created_at, CuratedAnswerRow.id))).scalars()
    )
    if tag is not None:  # tags are a JSON list: filtered here, the same way on SQLite and PostgreSQL
        rows = [row for row in rows if tag in (row.tags or [])]
    return rows[offset : offset + limit], len(rows)


async def settings_row(session: AsyncSession, *, tenant_id: str) -> CuratedSettingsRow | None:
    return await session.get(CuratedSettingsRow, tenant_id)


async def version_and_threshold(session: AsyncSession, *, tenant_id: str) -> tuple[int, float | None] | None:
    """The tenant's curated version and threshold, or None when it has no curated answers (the search
    path: one primary-key lookup)."""
    row = (
        await session.execute(
            select(
                CuratedSettingsRow.version, CuratedSettingsRow.threshold, CuratedSettingsRow.entry_count
            ).where(CuratedSettingsRow.tenant_id == tenant_id)
        )
    ).first()
    if row is None or row.entry_count == 0:
        return None
    return row.version, row.threshold


async def bump_version(session: AsyncSession, *, tenant_id: str) -> CuratedSettingsRow:
    """Record a change of the tenant's entries: every replica reloads its copy at the next search."""
    row = await session.get(CuratedSettingsRow, tenant_id, with_for_update=True)
    count = (
        await session.execute(
            select(func.count()).select_from(CuratedAnswerRow).where(CuratedAnswerRow.tenant_id == tenant_id)
        )
    ).scalar_one()
    if row is None:
        row = CuratedSettingsRow(tenant_id=tenant_id, threshold=None, version=1, entry_count=count)
        session.add(row)
    else:
        row.version += 1
        row.entry_count = count
    await session.flush()
    return row


async def record_hit(session: AsyncSession, *, tenant_id: str, answer_id: str, at: datetime) -> None:
    await session.execute(
        update(CuratedAnswerRow)
        .where(CuratedAnswerRow.id == answer_id, CuratedAnswerRow.tenant_id == tenant_id)
        .values(
            hit_count=CuratedAnswerRow.hit_count + 1,
            last_hit_at=at,
            updated_at=CuratedAnswerRow.updated_at,  # a hit is not an edit
        )
    )


async def unlink_kb(session: AsyncSession, *, kb_id: str) -> int:
    """A deleted knowledge base's entries stay, unlinked (explicitly, as the other deletes of a knowledge base
    are); returns how many were linked."""
    result = await session.execute(
        update(CuratedAnswerRow)
        .where(CuratedAnswerRow.kb_id == kb_id)
        .values(kb_id=None, updated_at=CuratedAnswerRow.updated_at)
    )
    return int(getattr(result, "rowcount", 0) or 0)


# --- suggestions ---


async def suggestion_for(
    session: AsyncSession, *, tenant_id: str, conversation_id: str, question_key: str
) -> CuratedSuggestionRow | None:
    result = await session.execute(
        select(CuratedSuggestionRow).where(
            CuratedSuggestionRow.tenant_id == tenant_id,
            CuratedSuggestionRow.conversation_id == conversation_id,
            CuratedSuggestionRow.question_key == question_key,
        )
    )
    return result.scalar_one_or_none()


async def suggestions_with_status(
    session: AsyncSession, *, tenant_id: str, status: str, embedding_model: str | None = None
) -> Sequence[CuratedSuggestionRow]:
    """The tenant's suggestions of that status (of one embedding model's vectors if given), oldest first."""
    query = select(CuratedSuggestionRow).where(
        CuratedSuggestionRow.tenant_id == tenant_id, CuratedSuggestionRow.status == status
    )
    if embedding_model is not None:
        query = query.where(CuratedSuggestionRow.embedding_model == embedding_model)
    result = await session.execute(query.order_by(CuratedSuggestionRow.created_at, CuratedSuggestionRow.id))
    return list(result.scalars())


async def group_members(
    session: AsyncSession, *, tenant_id: str, group_id: str
) -> Sequence[CuratedSuggestionRow]:
    """The group's suggestions, oldest first; a 404 when the tenant has no such group."""
    result = await session.execute(
        select(CuratedSuggestionRow)
        .where(CuratedSuggestionRow.tenant_id == tenant_id, CuratedSuggestionRow.group_id == group_id)
        .order_by(CuratedSuggestionRow.created_at, CuratedSuggestionRow.id)
        .with_for_update()
    )
    members = list(result.scalars())
    if not members:
        raise AppError(ErrorCode.NOT_FOUND, f"Suggestion group {group_id} not found.")
    return members
