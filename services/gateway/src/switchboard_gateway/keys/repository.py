"""All SQL of API keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard_gateway.keys.models import ApiKey
from switchboard_gateway.tenants.models import Tenant


async def add(session: AsyncSession, key: ApiKey) -> ApiKey:
    session.add(key)
    await session.flush()
    return key


async def list_for_tenant(
    session: AsyncSession, *, tenant_id: str, include_revoked: bool = False
) -> list[ApiKey]:
    query = select(ApiKey).where(ApiKey.tenant_id == tenant_id).order_by(ApiKey.created_at, ApiKey.id)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    return list((await session.scalars(query)).all())


async def get(session: AsyncSession, *, tenant_id: str, key_id: str) -> ApiKey | None:
    return await session.scalar(select(ApiKey).where(ApiKey.tenant_id == tenant_id, ApiKey.id == key_id))


async def find_active_by_hash(
    session: AsyncSession, *, key_hash: str, now: datetime
) -> Row[ApiKey, Tenant] | None:
    query = (
        select(ApiKey, Tenant)
        .join(Tenant, Tenant.id == ApiKey.tenant_id)
        .where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
        .where((ApiKey.expires_at.is_(None)) | (ApiKey.expires_at > now))
    )
    return (await session.execute(query)).first()
