"""All SQL of tenants."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard_gateway.tenants.models import Tenant


async def get(session: AsyncSession, *, tenant_id: str) -> Tenant | None:
    return await session.get(Tenant, tenant_id)


async def add(session: AsyncSession, tenant: Tenant) -> Tenant:
    session.add(tenant)
    await session.flush()
    return tenant


async def list_all(session: AsyncSession, *, limit: int, offset: int) -> tuple[list[Tenant], int]:
    from sqlalchemy import func

    total = await session.scalar(select(func.count()).select_from(Tenant)) or 0
    rows = await session.scalars(select(Tenant).order_by(Tenant.id).limit(limit).offset(offset))
    return list(rows.all()), int(total)
