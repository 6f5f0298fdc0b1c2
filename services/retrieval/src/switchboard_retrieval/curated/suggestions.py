"""Suggested curated answers: what an operator replied to a question the bot could not answer.

Chat sends one per question when an operator resolves such a conversation. A suggestion joins the pending
group whose closest question it matches as closely as a customer message must match a curated question (the
tenant's curated threshold for the model): two customers whose questions would get the same curated answer
asked the same thing. Groups are ranked by how many conversations asked; nothing reaches customers until an
operator approves a group, editing its question and answer, which makes it a curated answer whose variants
are the other customers' wordings.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard_retrieval.curated import repository, service
from switchboard_retrieval.curated.matching import wording_key
from switchboard_retrieval.curated.models import CuratedSuggestionRow
from switchboard_retrieval.db import new_id
from switchboard_retrieval.runtime import Runtime
from switchboard_shared.contracts.retrieval import (
    MAX_CURATED_VARIANTS,
    CuratedAnswerCreate,
    CuratedSuggestionApprove,
    CuratedSuggestionApproved,
    CuratedSuggestionCreate,
    CuratedSuggestionGroupOut,
    CuratedSuggestionOut,
    SuggestionReason,
    SuggestionStatus,
)
from switchboard_shared.errors import AppError, ErrorCode
from switchboard_shared.language import detect_language

SHOWN_MEMBERS = 20


def question_key(question: str) -> str:
    return hashlib.sha1(wording_key(question).encode("utf-8")).hexdigest()


def suggestion_out(row: CuratedSuggestionRow) -> CuratedSuggestionOut:
    reason: SuggestionReason = row.reason  # type: ignore[assignment]
    return CuratedSuggestionOut(
        id=row.id,
        question=row.question,
        answer=row.answer,
        language=row.language,
        conversation_id=row.conversation_id,
        reason=reason,
        created_at=row.created_at,
    )


def group_out(members: Sequence[CuratedSuggestionRow]) -> CuratedSuggestionGroupOut:
    """A group from its suggestions, oldest first."""
    first = next((m for m in members if m.id == m.group_id), members[0])
    latest = members[-1]
    status: SuggestionStatus = first.status  # type: ignore[assignment]
    return CuratedSuggestionGroupOut(
        id=first.group_id,
        status=status,
        question=first.question,
        answer=latest.answer,
        language=first.language,
        customers=len({m.conversation_id for m in members}),
        suggestions=[suggestion_out(m) for m in reversed(members)][:SHOWN_MEMBERS],
        curated_answer_id=next((m.curated_answer_id for m in members if m.curated_answer_id), None),
        first_asked_at=members[0].created_at,
        last_asked_at=latest.created_at,
    )


async def add(
    session: AsyncSession, rt: Runtime, *, tenant_id: str, body: CuratedSuggestionCreate
) -> tuple[CuratedSuggestionRow, bool]:
    """The suggestion, and whether it is new (the same question of the same conversation again only takes
    the operator's latest reply)."""
    key = question_key(body.question)
    existing = await repository.suggestion_for(
        session, tenant_id=tenant_id, conversation_id=body.conversation_id, question_key=key
    )
    if existing is not None:
        if existing.status == "pending":
            existing.answer = body.answer
            await session.flush()
        return existing, False
    model = rt.settings.default_embedding_model
    vector = (await service.embed_wordings(rt, model, [body.question]))[0]
    suggestion_id = new_id()
    group_id = await _closest_group(session, rt, tenant_id=tenant_id, model=model, vector=vector)
    row = CuratedSuggestionRow(
        id=suggestion_id,
        tenant_id=tenant_id,
        group_id=group_id or suggestion_id,
        question=body.question,
        question_key=key,
        answer=body.answer,
        language=body.language or detect_language(body.question),
        conversation_id=body.conversation_id,
        reason=body.reason,
        status="pending",
        embedding_model=model,
        vector=vector.astype(np.float32).tobytes(),
    )
    session.add(row)
    await session.flush()
    return row, True


async def _closest_group(
    session: AsyncSession, rt: Runtime, *, tenant_id: str, model: str, vector: np.ndarray
) -> str | None:
    pending = await repository.suggestions_with_status(
        session, tenant_id=tenant_id, status="pending", embedding_model=model
    )
    if not pending:
        return None
    matrix = np.vstack([np.frombuffer(row.vector, dtype=np.float32) for row in pending])
    scores = matrix @ vector.astype(np.float32)
    best = int(np.argmax(scores))
    tenant = await repository.settings_row(session, tenant_id=tenant_id)
    threshold = service.threshold_for(rt.settings, tenant.threshold if tenant else None, model)
    return pending[best].group_id if float(scores[best]) >= threshold else None


async def list_groups(
    session: AsyncSession, *, tenant_id: str, status: SuggestionStatus, limit: int, offset: int
) -> tuple[list[CuratedSuggestionGroupOut], int]:
    """The tenant's groups of that status, the most asked first (then the most recently asked)."""
    grouped: dict[str, list[CuratedSuggestionRow]] = defaultdict(list)
    for row in await repository.suggestions_with_status(session, tenant_id=tenant_id, status=status):
        grouped[row.group_id].append(row)
    groups = [group_out(members) for members in grouped.values()]
    groups.sort(key=lambda g: (-g.customers, -g.last_asked_at.timestamp(), g.id))
    return groups[offset : offset + limit], len(groups)


async def pending_group(
    session: AsyncSession, *, tenant_id: str, group_id: str
) -> Sequence[CuratedSuggestionRow]:
    members = await repository.group_members(session, tenant_id=tenant_id, group_id=group_id)
    if members[0].status != "pending":
        raise AppError(ErrorCode.CONFLICT, f"Suggestion group {group_id} is already {members[0].status}.")
    return members


async def approve(
    session: AsyncSession, rt: Runtime, *, tenant_id: str, group_id: str, body: CuratedSuggestionApprove
) -> CuratedSuggestionApproved:
    """The group becomes a curated answer: the operator's question and answer, the other customers' wordings
    as variants (unless the operator gave the variants)."""
    members = await pending_group(session, tenant_id=tenant_id, group_id=group_id)
    if body.variants is not None:
        variants = body.variants
    else:
        own = wording_key(body.question)
        wordings = list(
            {wording_key(m.question): m.question for m in members if wording_key(m.question) != own}.values()
        )
        taken = await service.curated_wordings(session, tenant_id=tenant_id)
        variants = [text for text in wordings if wording_key(text) not in taken][:MAX_CURATED_VARIANTS]
    entry = await service.create(
        session,
        rt,
        tenant_id=tenant_id,
        body=CuratedAnswerCreate(
            question=body.question,
            variants=variants,
            answer=body.answer,
            language=body.language,
            tags=body.tags,
            group=body.group,
            kb_id=body.kb_id,
        ),
    )
    for member in members:
        member.status = "approved"
        member.curated_answer_id = entry.id
    await session.flush()
    return CuratedSuggestionApproved(group=group_out(members), answer=service.answer_out(entry))


async def dismiss(session: AsyncSession, *, tenant_id: str, group_id: str) -> CuratedSuggestionGroupOut:
    members = await pending_group(session, tenant_id=tenant_id, group_id=group_id)
    for member in members:
        member.status = "dismissed"
    await session.flush()
    return group_out(members)


async def merge(
    session: AsyncSession, *, tenant_id: str, group_id: str, into: str
) -> CuratedSuggestionGroupOut:
    """Every suggestion of ``group_id`` joins the pending group ``into`` (an operator saw they ask the
    same)."""
    if group_id == into:
        raise AppError(ErrorCode.VALIDATION_ERROR, "A suggestion group cannot be merged into itself.")
    members = await pending_group(session, tenant_id=tenant_id, group_id=group_id)
    target = await pending_group(session, tenant_id=tenant_id, group_id=into)
    for member in members:
        member.group_id = into
    await session.flush()
    return group_out(sorted([*target, *members], key=lambda m: (m.created_at, m.id)))
