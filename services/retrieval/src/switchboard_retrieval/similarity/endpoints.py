"""``/internal/v1/similarity``: texts compared with queries in a knowledge base's embedding space (chat's
extractive answerer uses it; it is not part of the public API)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from switchboard_retrieval.deps import RuntimeDep
from switchboard_retrieval.similarity import service
from switchboard_shared.contracts.retrieval import SimilarityRequest, SimilarityResponse
from switchboard_shared.deps import SessionDep, TenantDep
from switchboard_shared.errors import error_responses

router = APIRouter(tags=["similarity"])


@router.post("/internal/v1/similarity", responses=error_responses(400, 404, 422, 503))
async def similarity(
    body: SimilarityRequest, session: SessionDep, tenant_id: TenantDep, rt: RuntimeDep, request: Request
) -> SimilarityResponse:
    cache: service.VectorCache = request.state.similarity_cache
    return await service.similarity(session, rt, cache, tenant_id=tenant_id, request=body)
