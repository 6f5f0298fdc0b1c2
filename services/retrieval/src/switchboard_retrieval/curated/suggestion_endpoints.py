"""Suggested curated answers (``/internal/v1/curated/suggestions``; the gateway exposes them as
``/v1/curated/suggestions`` to a tenant's server and admin keys; chat records them)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from switchboard_retrieval.curated import repository, suggestions
from switchboard_retrieval.deps import RuntimeDep
from switchboard_shared.contracts.common import Page
from switchboard_shared.contracts.retrieval import (
    CuratedSuggestionApprove,
    CuratedSuggestionApproved,
    CuratedSuggestionCreate,
    CuratedSuggestionGroupOut,
    CuratedSuggestionMerge,
    CuratedSuggestionOut,
    SuggestionStatus,
)
from switchboard_shared.deps import PageOffset, SessionDep, TenantDep
from switchboard_shared.errors import error_responses

router = APIRouter(prefix="/internal/v1/curated/suggestions", tags=["curated answers"])


@router.post("", status_code=201, responses=error_responses(400, 422, 503))
async def create_suggestion(
    body: CuratedSuggestionCreate,
    session: SessionDep,
    tenant_id: TenantDep,
    rt: RuntimeDep,
    response: Response,
) -> CuratedSuggestionOut:
    """Record an operator's reply to a question the bot could not answer (201; 200 when the conversation
    had already suggested that question)."""
    row, created = await suggestions.add(session, rt, tenant_id=tenant_id, body=body)
    if not created:
        response.status_code = 200
    return suggestions.suggestion_out(row)


@router.get("", responses=error_responses(400, 422))
async def list_groups(
    session: SessionDep,
    tenant_id: TenantDep,
    status: SuggestionStatus = "pending",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: PageOffset = 0,
) -> Page[CuratedSuggestionGroupOut]:
    groups, total = await suggestions.list_groups(
        session, tenant_id=tenant_id, status=status, limit=limit, offset=offset
    )
    return Page(items=groups, total=total, limit=limit, offset=offset)


@router.get("/{group_id}", responses=error_responses(404))
async def get_group(group_id: str, session: SessionDep, tenant_id: TenantDep) -> CuratedSuggestionGroupOut:
    return suggestions.group_out(
        await repository.group_members(session, tenant_id=tenant_id, group_id=group_id)
    )


@router.post("/{group_id}/approve", status_code=201, responses=error_responses(404, 409, 422, 503))
async def approve(
    group_id: str, body: CuratedSuggestionApprove, session: SessionDep, tenant_id: TenantDep, rt: RuntimeDep
) -> CuratedSuggestionApproved:
    """Make the group a curated answer (the question and answer as the operator edited them)."""
    return await suggestions.approve(session, rt, tenant_id=tenant_id, group_id=group_id, body=body)


@router.post("/{group_id}/dismiss", responses=error_responses(404, 409))
async def dismiss(group_id: str, session: SessionDep, tenant_id: TenantDep) -> CuratedSuggestionGroupOut:
    return await suggestions.dismiss(session, tenant_id=tenant_id, group_id=group_id)


@router.post("/{group_id}/merge", responses=error_responses(404, 409, 422))
async def merge(
    group_id: str, body: CuratedSuggestionMerge, session: SessionDep, tenant_id: TenantDep
) -> CuratedSuggestionGroupOut:
    """Move the group's suggestions into another pending group (they ask the same)."""
    return await suggestions.merge(session, tenant_id=tenant_id, group_id=group_id, into=body.into)
