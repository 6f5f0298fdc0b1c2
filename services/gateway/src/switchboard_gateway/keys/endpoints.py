"""API key admin endpoints: ``/v1/admin/tenants/{tenant_id}/keys``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from switchboard_gateway.auth.admin import AdminDep, ensure_tenant_access
from switchboard_gateway.keys import repository, service
from switchboard_gateway.keys.models import ApiKeyRow
from switchboard_gateway.keys.schemas import KeyCreate, KeyCreated, KeyOut
from switchboard_gateway.runtime import RuntimeDep
from switchboard_gateway.tenants import service as tenants
from switchboard_shared.deps import SessionDep
from switchboard_shared.errors import error_responses

router = APIRouter(
    prefix="/v1/admin/tenants/{tenant_id}/keys",
    tags=["admin"],
    responses=error_responses(401, 403, 404, 429),
)


def _out(key: ApiKeyRow) -> KeyOut:
    return KeyOut(
        id=key.id,
        tenant_id=key.tenant_id,
        scope=key.scope,  # type: ignore[arg-type]
        name=key.name,
        prefix=key.display_prefix,
        allowed_origins=list(key.allowed_origins or []),
        requests_per_minute=key.requests_per_minute,
        created_at=key.created_at,
        expires_at=key.expires_at,
        revoked_at=key.revoked_at,
    )


@router.post("", status_code=201, summary="Create an API key (the key is shown only in this answer)")
async def create_key(tenant_id: str, data: KeyCreate, session: SessionDep, principal: AdminDep) -> KeyCreated:
    ensure_tenant_access(principal, tenant_id)
    key, secret = await service.create(session, tenant_id=tenant_id, data=data)
    return KeyCreated(**_out(key).model_dump(), key=secret)


@router.get("", summary="List a tenant's API keys")
async def list_keys(
    tenant_id: str,
    session: SessionDep,
    principal: AdminDep,
    include_revoked: Annotated[bool, Query()] = False,
) -> list[KeyOut]:
    ensure_tenant_access(principal, tenant_id)
    await tenants.get_or_404(session, tenant_id=tenant_id)
    keys = await repository.list_for_tenant(session, tenant_id=tenant_id, include_revoked=include_revoked)
    return [_out(key) for key in keys]


@router.delete("/{key_id}", summary="Revoke an API key")
async def revoke_key(
    tenant_id: str, key_id: str, session: SessionDep, principal: AdminDep, runtime: RuntimeDep
) -> KeyOut:
    ensure_tenant_access(principal, tenant_id)
    key = await service.revoke(session, tenant_id=tenant_id, key_id=key_id)
    await session.commit()
    runtime.resolver.forget_tenant(tenant_id)
    return _out(key)
