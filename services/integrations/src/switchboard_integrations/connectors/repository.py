"""All SQL of connector configs and channel bindings."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard_integrations.connectors.models import ChannelBindingRow, ConnectorConfigRow


async def list_connectors(session: AsyncSession, *, tenant_id: str) -> Sequence[ConnectorConfigRow]:
    result = await session.scalars(
        select(ConnectorConfigRow)
        .where(ConnectorConfigRow.tenant_id == tenant_id)
        .order_by(ConnectorConfigRow.kind)
    )
    return result.all()


async def get_connector(session: AsyncSession, *, connector_id: str) -> ConnectorConfigRow | None:
    return await session.get(ConnectorConfigRow, connector_id)


async def connector_of_kind(
    session: AsyncSession, *, tenant_id: str, kinds: Sequence[str]
) -> ConnectorConfigRow | None:
    result = await session.scalars(
        select(ConnectorConfigRow).where(
            ConnectorConfigRow.tenant_id == tenant_id,
            ConnectorConfigRow.kind.in_(kinds),
            ConnectorConfigRow.enabled.is_(True),
        )
    )
    found = {row.kind: row for row in result.all()}
    for kind in kinds:
        if kind in found:
            return found[kind]
    return None


async def list_bindings(session: AsyncSession, *, tenant_id: str) -> Sequence[ChannelBindingRow]:
    result = await session.scalars(
        select(ChannelBindingRow)
        .where(ChannelBindingRow.tenant_id == tenant_id)
        .order_by(ChannelBindingRow.created_at)
    )
    return result.all()


async def binding_by_external_id(
    session: AsyncSession, *, channel: str, external_id: str
) -> ChannelBindingRow | None:
    result = await session.scalars(
        select(ChannelBindingRow).where(
            ChannelBindingRow.channel == channel, ChannelBindingRow.external_id == external_id
        )
    )
    return result.first()
