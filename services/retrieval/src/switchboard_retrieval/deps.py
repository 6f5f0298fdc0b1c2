"""Dependencies of the retrieval routes: the service runtime and load-or-404 of a tenant's knowledge base."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from switchboard_retrieval.kbs import repository
from switchboard_retrieval.models import KnowledgeBaseRow
from switchboard_retrieval.runtime import Runtime
from switchboard_shared.deps import SessionDep, TenantDep


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_kb(kb_id: str, session: SessionDep, tenant_id: TenantDep) -> KnowledgeBaseRow:
    return await repository.get_kb_or_404(session, tenant_id=tenant_id, kb_id=kb_id)


KnowledgeBaseDep = Annotated[KnowledgeBaseRow, Depends(get_kb)]
