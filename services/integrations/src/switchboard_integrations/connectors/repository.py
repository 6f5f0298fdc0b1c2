"""All SQL of connector configs and channel bindings."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard_integrations.connectors.models import ChannelBinding, ConnectorConfig


async def list_connectors(session: AsyncSession, *, tenant_id: str) -> Sequence[ConnectorConfig]:
    result = await session.scalars(
        select(ConnectorConfig).where(ConnectorConfig.tenant_id == tenant_id).order_by(ConnectorConfig.kind)
    )
    return result.all()


async def get_connector(session: AsyncSession, *, connector_id: str) -> ConnectorConfig | None:
    return await session.get(ConnectorConfig, connector_id)


async def connector_of_kind(
    session: AsyncSession, *, tenant_id: str, kinds: Sequence[str]
) -> ConnectorConfig | None:
    result = await session.scalars(
        select(ConnectorConfig).where(
            ConnectorConfig.tenant_id == tenant_id,
            ConnectorConfig.kind.in_(kinds),
            ConnectorConfig.enabled.is_(True),
        )
    )
    found = {row.kind: row for row in result.all()}
    for kind in kinds:
        if kind in found:
            return found[kind]
    return None


async def list_bindings(session: AsyncSession, *, tenant_id: str) -> Sequence[ChannelBinding]:
    result = await session.scalars(
        select(ChannelBinding)
        .where(ChannelBinding.tenant_id == tenant_id)
        .order_by(ChannelBinding.created_at)
    )
    return result.all()


async def binding_by_external_id(
    session: AsyncSession, *, channel: str, external_id: str
) -> ChannelBinding | None:
    result = await session.scalars(
        select(ChannelBinding).where(
            ChannelBinding.channel == channel, ChannelBinding.external_id == external_id
        )
    )
    return result.first()
