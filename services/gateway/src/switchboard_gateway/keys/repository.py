"""All SQL of API keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard_gateway.keys.models import ApiKeyRow
from switchboard_gateway.tenants.models import TenantRow


async def add(session: AsyncSession, key: ApiKeyRow) -> ApiKeyRow:
    session.add(key)
    await session.flush()
    return key


async def list_for_tenant(
    session: AsyncSession, *, tenant_id: str, include_revoked: bool = False
) -> list[ApiKeyRow]:
    query = (
        select(ApiKeyRow).where(ApiKeyRow.tenant_id == tenant_id).order_by(ApiKeyRow.created_at, ApiKeyRow.id)
    )
    if not include_revoked:
        query = query.where(ApiKeyRow.revoked_at.is_(None))
    return list((await session.scalars(query)).all())


async def get(session: AsyncSession, *, tenant_id: str, key_id: str) -> ApiKeyRow | None:
    return await session.scalar(
        select(ApiKeyRow).where(ApiKeyRow.tenant_id == tenant_id, ApiKeyRow.id == key_id)
    )


async def find_active_by_hash(
    session: AsyncSession, *, key_hash: str, now: datetime
) -> Row[ApiKeyRow, TenantRow] | None:
    query = (
        select(ApiKeyRow, TenantRow)
        .join(TenantRow, TenantRow.id == ApiKeyRow.tenant_id)
        .where(ApiKeyRow.key_hash == key_hash, ApiKeyRow.revoked_at.is_(None))
        .where((ApiKeyRow.expires_at.is_(None)) | (ApiKeyRow.expires_at > now))
    )
    return (await session.execute(query)).first()
