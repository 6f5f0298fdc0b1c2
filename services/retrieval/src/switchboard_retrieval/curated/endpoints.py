"""Admin API of curated answers (``/internal/v1/curated``; the gateway exposes it as ``/v1/curated`` to a
tenant's server and admin keys)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from switchboard_retrieval.curated import repository, service
from switchboard_retrieval.deps import RuntimeDep
from switchboard_shared.contracts.common import Page
from switchboard_shared.contracts.retrieval import (
    CuratedAnswerCreate,
    CuratedAnswerOut,
    CuratedAnswerUpdate,
    CuratedMatchRequest,
    CuratedMatchResponse,
    CuratedSettings,
    CuratedSettingsOut,
)
from switchboard_shared.deps import PageOffset, SessionDep, TenantDep
from switchboard_shared.errors import error_responses

router = APIRouter(prefix="/internal/v1/curated", tags=["curated answers"])


@router.post("", status_code=201, responses=error_responses(400, 404, 409, 422, 503))
async def create_answer(
    body: CuratedAnswerCreate, session: SessionDep, tenant_id: TenantDep, rt: RuntimeDep
) -> CuratedAnswerOut:
    entry = await service.create(session, rt, tenant_id=tenant_id, body=body)
    return service.answer_out(entry)


@router.get("", responses=error_responses(400))
async def list_answers(
    session: SessionDep,
    tenant_id: TenantDep,
    kb_id: str | None = None,
    language: str | None = None,
    tag: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: PageOffset = 0,
) -> Page[CuratedAnswerOut]:
    entries, total = await repository.list_entries(
        session, tenant_id=tenant_id, kb_id=kb_id, language=language, tag=tag, limit=limit, offset=offset
    )
    return Page(items=[service.answer_out(e) for e in entries], total=total, limit=limit, offset=offset)


@router.get("/settings", responses=error_responses(400))
async def get_settings(session: SessionDep, tenant_id: TenantDep, rt: RuntimeDep) -> CuratedSettingsOut:
    return await service.get_settings(session, rt, tenant_id=tenant_id)


@router.put("/settings", responses=error_responses(400, 422))
async def put_settings(
    body: CuratedSettings, session: SessionDep, tenant_id: TenantDep, rt: RuntimeDep
) -> CuratedSettingsOut:
    return await service.put_settings(session, rt, tenant_id=tenant_id, body=body)


@router.post("/match", responses=error_responses(400, 422))
async def dry_run(
    body: CuratedMatchRequest, session: SessionDep, tenant_id: TenantDep, rt: RuntimeDep
) -> CuratedMatchResponse:
    """Which curated answer a message would get (no hit is counted)."""
    return await service.dry_run(session, rt, tenant_id=tenant_id, request=body)


@router.get("/{answer_id}", responses=error_responses(404))
async def get_answer(answer_id: str, session: SessionDep, tenant_id: TenantDep) -> CuratedAnswerOut:
    entry = await repository.get_or_404(session, tenant_id=tenant_id, answer_id=answer_id)
    return service.answer_out(entry)


@router.patch("/{answer_id}", responses=error_responses(404, 409, 422, 503))
async def update_answer(
    answer_id: str, body: CuratedAnswerUpdate, session: SessionDep, tenant_id: TenantDep, rt: RuntimeDep
) -> CuratedAnswerOut:
    entry = await repository.get_or_404(session, tenant_id=tenant_id, answer_id=answer_id)
    return service.answer_out(await service.update(session, rt, entry=entry, body=body))


@router.delete("/{answer_id}", status_code=204, responses=error_responses(404))
async def delete_answer(answer_id: str, session: SessionDep, tenant_id: TenantDep) -> Response:
    entry = await repository.get_or_404(session, tenant_id=tenant_id, answer_id=answer_id)
    await service.delete(session, entry=entry)
    return Response(status_code=204)
