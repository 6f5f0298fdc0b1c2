"""All SQL of tenants."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard_gateway.tenants.models import TenantRow


async def get(session: AsyncSession, *, tenant_id: str) -> TenantRow | None:
    return await session.get(TenantRow, tenant_id)


async def add(session: AsyncSession, tenant: TenantRow) -> TenantRow:
    session.add(tenant)
    await session.flush()
    return tenant


async def list_all(session: AsyncSession, *, limit: int, offset: int) -> tuple[list[TenantRow], int]:
    from sqlalchemy import func

    total = await session.scalar(select(func.count()).select_from(TenantRow)) or 0
    rows = await session.scalars(select(TenantRow).order_by(TenantRow.id).limit(limit).offset(offset))
    return list(rows.all()), int(total)
