"""Search routes: ``/internal/v1/search`` for chat (every KB of the tenant, or those named) and the
admin test search of one knowledge base."""

from __future__ import annotations

from fastapi import APIRouter

from switchboard_retrieval.deps import KnowledgeBaseDep, RuntimeDep
from switchboard_retrieval.search import service
from switchboard_shared.contracts.retrieval import SearchRequest, SearchResponse
from switchboard_shared.deps import SessionDep, TenantDep
from switchboard_shared.errors import error_responses

router = APIRouter(tags=["search"])


@router.post("/internal/v1/search", responses=error_responses(400, 404, 503))
async def search(
    body: SearchRequest, session: SessionDep, tenant_id: TenantDep, rt: RuntimeDep
) -> SearchResponse:
    return await service.search(session, rt, tenant_id=tenant_id, request=body)


@router.post("/internal/v1/kbs/{kb_id}/search", responses=error_responses(400, 404, 503))
async def search_kb(
    kb: KnowledgeBaseDep, body: SearchRequest, session: SessionDep, rt: RuntimeDep
) -> SearchResponse:
    request = body.model_copy(update={"kb_ids": [kb.id]})
    return await service.search(session, rt, tenant_id=kb.tenant_id, request=request, knowledge_bases=[kb])
