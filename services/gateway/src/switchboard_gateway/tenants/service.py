"""Tenant logic: create, update (budgets, limits, kill switch), rotate the identity secret."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from switchboard_gateway.keys.secrets import generate_identity_secret
from switchboard_gateway.tenants import repository
from switchboard_gateway.tenants.models import TenantRow
from switchboard_gateway.tenants.schemas import TenantCreate, TenantUpdate
from switchboard_shared.errors import AppError, ErrorCode


async def get_or_404(session: AsyncSession, *, tenant_id: str) -> TenantRow:
    tenant = await repository.get(session, tenant_id=tenant_id)
    if tenant is None:
        raise AppError(ErrorCode.NOT_FOUND, f"Tenant {tenant_id!r} not found.")
    return tenant


async def create(session: AsyncSession, *, data: TenantCreate) -> TenantRow:
    if await repository.get(session, tenant_id=data.id) is not None:
        raise AppError(ErrorCode.CONFLICT, f"Tenant {data.id!r} already exists.")
    now = datetime.now(UTC)
    tenant = TenantRow(
        id=data.id,
        name=data.name,
        disabled=False,
        identity_secret=generate_identity_secret(),
        daily_message_budget=data.daily_message_budget,
        daily_token_budget=data.daily_token_budget,
        end_user_requests_per_minute=data.end_user_requests_per_minute,
        created_at=now,
        updated_at=now,
    )
    return await repository.add(session, tenant)


async def update(session: AsyncSession, *, tenant_id: str, data: TenantUpdate) -> TenantRow:
    tenant = await get_or_404(session, tenant_id=tenant_id)
    for field_name, value in data.model_dump(exclude_unset=True).items():
        if field_name in {"name", "disabled"} and value is None:
            raise AppError(ErrorCode.VALIDATION_ERROR, f"{field_name} cannot be null.")
        setattr(tenant, field_name, value)
    tenant.updated_at = datetime.now(UTC)
    await session.flush()
    return tenant


async def rotate_identity_secret(session: AsyncSession, *, tenant_id: str) -> TenantRow:
    tenant = await get_or_404(session, tenant_id=tenant_id)
    tenant.identity_secret = generate_identity_secret()
    tenant.updated_at = datetime.now(UTC)
    await session.flush()
    return tenant
