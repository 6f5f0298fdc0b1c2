"""The tenant admin API under ``/v1/admin``: operator creates tenants; tenant admins manage their own."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from switchboard_gateway.auth.admin import AdminDep, OperatorDep, ensure_tenant_access
from switchboard_gateway.auth.identity import sign_identity, verify_identity
from switchboard_gateway.runtime import RuntimeDep
from switchboard_gateway.tenants import repository, service
from switchboard_gateway.tenants.models import TenantRow
from switchboard_gateway.tenants.schemas import (
    IdentitySecret,
    IdentityToken,
    IdentityTokenRequest,
    TenantCreate,
    TenantCreated,
    TenantOut,
    TenantPage,
    TenantUpdate,
    UsageOut,
)
from switchboard_shared.deps import PageOffset, SessionDep
from switchboard_shared.errors import AppError, ErrorCode, error_responses

router = APIRouter(prefix="/v1/admin", tags=["admin"], responses=error_responses(401, 403, 429))
OPERATOR_ONLY_FIELDS = frozenset({"daily_message_budget", "daily_token_budget"})


def _out(tenant: TenantRow) -> TenantOut:
    return TenantOut.model_validate(tenant, from_attributes=True)


@router.get("/me", summary="Who the presented credential is")
async def whoami(principal: AdminDep) -> dict[str, str | None]:
    return {"kind": "operator" if principal.is_operator else "admin_key", "tenant_id": principal.tenant_id}


@router.post(
    "/tenants", status_code=201, summary="Create a tenant (operator)", responses=error_responses(409)
)
async def create_tenant(data: TenantCreate, session: SessionDep, _: OperatorDep) -> TenantCreated:
    tenant = await service.create(session, data=data)
    return TenantCreated(**_out(tenant).model_dump(), identity_secret=tenant.identity_secret)


@router.get("/tenants", summary="List tenants (operator)")
async def list_tenants(
    session: SessionDep,
    _: OperatorDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: PageOffset = 0,
) -> TenantPage:
    tenants, total = await repository.list_all(session, limit=limit, offset=offset)
    return TenantPage(items=[_out(t) for t in tenants], total=total, limit=limit, offset=offset)


@router.get("/tenants/{tenant_id}", summary="Read a tenant", responses=error_responses(404))
async def get_tenant(tenant_id: str, session: SessionDep, principal: AdminDep) -> TenantOut:
    ensure_tenant_access(principal, tenant_id)
    return _out(await service.get_or_404(session, tenant_id=tenant_id))


@router.patch(
    "/tenants/{tenant_id}",
    summary="Change a tenant: name, kill switch, end-user limit; budgets (operator only)",
    responses=error_responses(404),
)
async def update_tenant(
    tenant_id: str, data: TenantUpdate, session: SessionDep, principal: AdminDep, runtime: RuntimeDep
) -> TenantOut:
    ensure_tenant_access(principal, tenant_id)
    if not principal.is_operator and OPERATOR_ONLY_FIELDS & data.model_fields_set:
        raise AppError(ErrorCode.FORBIDDEN, "Only the fleet operator may change budgets.")
    tenant = await service.update(session, tenant_id=tenant_id, data=data)
    await session.commit()
    runtime.resolver.forget_tenant(tenant_id)
    return _out(tenant)


@router.get(
    "/tenants/{tenant_id}/identity-secret",
    summary="Read the HMAC secret that signs widget identity tokens",
    responses=error_responses(404),
)
async def get_identity_secret(tenant_id: str, session: SessionDep, principal: AdminDep) -> IdentitySecret:
    ensure_tenant_access(principal, tenant_id)
    tenant = await service.get_or_404(session, tenant_id=tenant_id)
    return IdentitySecret(identity_secret=tenant.identity_secret)


@router.post(
    "/tenants/{tenant_id}/identity-secret",
    summary="Rotate the identity secret (tokens signed with the old one stop working)",
    responses=error_responses(404),
)
async def rotate_identity_secret(
    tenant_id: str, session: SessionDep, principal: AdminDep, runtime: RuntimeDep
) -> IdentitySecret:
    ensure_tenant_access(principal, tenant_id)
    tenant = await service.rotate_identity_secret(session, tenant_id=tenant_id)
    await session.commit()
    runtime.resolver.forget_tenant(tenant_id)
    return IdentitySecret(identity_secret=tenant.identity_secret)


@router.post(
    "/tenants/{tenant_id}/identity-tokens",
    summary="Sign a widget identity token for a user (what the tenant's backend normally does)",
    responses=error_responses(404),
)
async def issue_identity_token(
    tenant_id: str, data: IdentityTokenRequest, session: SessionDep, principal: AdminDep
) -> IdentityToken:
    ensure_tenant_access(principal, tenant_id)
    tenant = await service.get_or_404(session, tenant_id=tenant_id)
    try:
        token = sign_identity(tenant.identity_secret, data.user_id, ttl_seconds=data.ttl_seconds)
    except ValueError as exc:
        raise AppError(ErrorCode.VALIDATION_ERROR, str(exc)) from exc
    return IdentityToken(
        token=token,
        user_id=data.user_id,
        expires_at=verify_identity(tenant.identity_secret, token).expires_at,
    )


@router.get("/tenants/{tenant_id}/usage", summary="Today's usage against the budgets")
async def usage(tenant_id: str, session: SessionDep, principal: AdminDep, runtime: RuntimeDep) -> UsageOut:
    ensure_tenant_access(principal, tenant_id)
    tenant = await service.get_or_404(session, tenant_id=tenant_id)
    today = await runtime.limits.usage(tenant_id)
    settings = runtime.settings
    return UsageOut(
        tenant_id=tenant_id,
        day=today.day,
        messages=today.messages,
        tokens=today.tokens,
        message_budget=settings.daily_message_budget
        if tenant.daily_message_budget is None
        else tenant.daily_message_budget,
        token_budget=settings.daily_token_budget
        if tenant.daily_token_budget is None
        else tenant.daily_token_budget,
    )
