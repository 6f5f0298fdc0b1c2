"""The job API: progress and counts of ingestion jobs, readable while they run (``/internal/v1/jobs``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from switchboard_retrieval.kbs import repository, service
from switchboard_shared.contracts.common import Page
from switchboard_shared.contracts.retrieval import IngestionJobOut
from switchboard_shared.deps import PageOffset, SessionDep, TenantDep
from switchboard_shared.errors import error_responses

router = APIRouter(prefix="/internal/v1/jobs", tags=["ingestion jobs"])


@router.get("/{job_id}", responses=error_responses(404))
async def get_job(job_id: str, session: SessionDep, tenant_id: TenantDep) -> IngestionJobOut:
    return service.job_out(await repository.get_job_or_404(session, tenant_id=tenant_id, job_id=job_id))


@router.get("", responses=error_responses(400))
async def list_jobs(
    session: SessionDep,
    tenant_id: TenantDep,
    kb_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: PageOffset = 0,
) -> Page[IngestionJobOut]:
    jobs, total = await repository.list_jobs(
        session, tenant_id=tenant_id, kb_id=kb_id, limit=limit, offset=offset
    )
    return Page(items=[service.job_out(j) for j in jobs], total=total, limit=limit, offset=offset)
