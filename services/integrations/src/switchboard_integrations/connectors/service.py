"""Connector configs and channel bindings: CRUD with masked secrets, and the factory that turns a stored
config into a live plugin (with its own ``Downstream`` and breaker)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError

import switchboard_integrations.channels.telegram
import switchboard_integrations.channels.whatsapp
import switchboard_integrations.connectors.crm_rest
import switchboard_integrations.connectors.jira
import switchboard_integrations.connectors.zendesk  # noqa: F401  (plugins register themselves)
from switchboard_integrations.channels.base import (
    BindingContext,
    ChannelPlugin,
    channel_class,
    validate_binding,
)
from switchboard_integrations.channels.whatsapp import WhatsAppChannel
from switchboard_integrations.connectors import repository
from switchboard_integrations.connectors.base import (
    Connector,
    ConnectorContext,
    CrmConnector,
    PluginSettings,
    TicketConnector,
    check_address,
    connector_class,
    mask_secret,
    validate_config,
)
from switchboard_integrations.connectors.crm_rest import RestCrmConnector
from switchboard_integrations.connectors.demo_tenant import DEMO_CONNECTOR_ID, demo_connector_config
from switchboard_integrations.connectors.models import ChannelBindingRow, ConnectorConfigRow
from switchboard_integrations.connectors.schemas import (
    BindingCreate,
    BindingOut,
    ConnectorCreate,
    ConnectorOut,
    ConnectorUpdate,
)
from switchboard_integrations.runtime import Runtime
from switchboard_shared.contracts.integrations import TicketSystem
from switchboard_shared.errors import AppError, ErrorCode
from switchboard_shared.http_client import Downstream
from switchboard_shared.url_guard import UrlRefused, validate_base_url

TICKET_KINDS = ("zendesk", "jira")


def masked(secrets: dict[str, str]) -> dict[str, str]:
    return {key: mask_secret(value) for key, value in secrets.items() if value}


def connector_out(record: ConnectorConfigRow, *, builtin: bool = False) -> ConnectorOut:
    return ConnectorOut(
        id=record.id,
        tenant_id=record.tenant_id,
        kind=record.kind,
        name=record.name,
        enabled=record.enabled,
        settings=record.settings,
        secrets=masked(record.secrets),
        builtin=builtin,
        webhook_path=f"/v1/channels/{record.kind}/{record.id}" if record.kind in TICKET_KINDS else None,
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


def binding_out(record: ChannelBindingRow) -> BindingOut:
    return BindingOut(
        id=record.id,
        tenant_id=record.tenant_id,
        channel=record.channel,  # type: ignore[arg-type]
        external_id=record.external_id,
        enabled=record.enabled,
        settings=record.settings,
        secrets=masked(record.secrets),
        webhook_path=f"/v1/channels/{record.channel}/{record.external_id}",
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


def _dump(model: Any) -> dict[str, Any]:
    dumped: dict[str, Any] = model.model_dump(mode="json", exclude_none=True)
    return dumped


# --- connector configs ---


async def list_connectors(runtime: Runtime, *, tenant_id: str) -> list[ConnectorOut]:
    async with runtime.transaction() as session:
        rows = await repository.list_connectors(session, tenant_id=tenant_id)
    result = [connector_out(row) for row in rows]
    builtin = demo_connector_config(runtime.settings, tenant_id)
    if builtin is not None and not any(row.kind == builtin.kind for row in rows):
        result.append(connector_out(builtin, builtin=True))
    return result


async def get_connector(runtime: Runtime, *, tenant_id: str, connector_id: str) -> ConnectorOut:
    async with runtime.transaction() as session:
        row = await repository.get_connector(session, connector_id=connector_id)
    if row is None or row.tenant_id != tenant_id:
        raise AppError(ErrorCode.NOT_FOUND, "No such connector.")
    return connector_out(row)


async def create_connector(runtime: Runtime, *, tenant_id: str, body: ConnectorCreate) -> ConnectorOut:
    settings, secrets = validate_config(body.kind, body.settings, body.secrets)
    await check_address(body.kind, settings, runtime.pool.guard)
    row = ConnectorConfigRow(
        tenant_id=tenant_id,
        kind=body.kind,
        name=body.name or body.kind,
        enabled=body.enabled,
        settings=_dump(settings),
        secrets=_dump(secrets),
    )
    try:
        async with runtime.transaction() as session:
            session.add(row)
    except IntegrityError as exc:
        raise AppError(
            ErrorCode.CONFLICT, f"This tenant already has a {body.kind} connector; update it instead."
        ) from exc
    runtime.configs.clear()
    return connector_out(row)


def _merged(stored: dict[str, str], update: dict[str, str | None] | None) -> dict[str, str]:
    """Stored secrets with an update applied: a key sets a secret, None removes it, absent keeps it."""
    merged = dict(stored)
    for key, value in (update or {}).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


async def update_connector(
    runtime: Runtime, *, tenant_id: str, connector_id: str, body: ConnectorUpdate
) -> ConnectorOut:
    if body.settings is not None:
        # Where the new base URL points is checked before the transaction (DNS may be slow).
        async with runtime.transaction() as session:
            found = await repository.get_connector(session, connector_id=connector_id)
        if found is not None and found.tenant_id == tenant_id:
            settings, _ = validate_config(found.kind, body.settings, _merged(found.secrets, body.secrets))
            await check_address(found.kind, settings, runtime.pool.guard)
    async with runtime.transaction() as session:
        row = await repository.get_connector(session, connector_id=connector_id)
        if row is None or row.tenant_id != tenant_id:
            raise AppError(ErrorCode.NOT_FOUND, "No such connector.")
        new_settings = body.settings if body.settings is not None else row.settings
        settings, secrets = validate_config(row.kind, new_settings, _merged(row.secrets, body.secrets))
        row.settings = _dump(settings)
        row.secrets = _dump(secrets)
        if body.name is not None:
            row.name = body.name
        if body.enabled is not None:
            row.enabled = body.enabled
        await session.flush()
        result = connector_out(row)
    runtime.configs.clear()
    return result


async def delete_connector(runtime: Runtime, *, tenant_id: str, connector_id: str) -> None:
    async with runtime.transaction() as session:
        row = await repository.get_connector(session, connector_id=connector_id)
        if row is None or row.tenant_id != tenant_id:
            raise AppError(ErrorCode.NOT_FOUND, "No such connector.")
        await session.delete(row)
    runtime.configs.clear()


# --- channel bindings ---


async def list_bindings(runtime: Runtime, *, tenant_id: str) -> list[BindingOut]:
    async with runtime.transaction() as session:
        rows = await repository.list_bindings(session, tenant_id=tenant_id)
    return [binding_out(row) for row in rows]


async def create_binding(runtime: Runtime, *, tenant_id: str, body: BindingCreate) -> BindingOut:
    settings, secrets, _ = validate_binding(body.channel, body.settings, body.secrets)
    external_id = await verified_account(runtime, body.channel.value, settings, secrets)
    row = ChannelBindingRow(
        tenant_id=tenant_id,
        channel=body.channel.value,
        external_id=external_id,
        enabled=body.enabled,
        settings=_dump(settings),
        secrets=_dump(secrets),
    )
    try:
        async with runtime.transaction() as session:
            session.add(row)
    except IntegrityError as exc:
        raise AppError(ErrorCode.CONFLICT, f"This {body.channel} account is already bound.") from exc
    runtime.configs.clear()
    return binding_out(row)


async def delete_binding(runtime: Runtime, *, tenant_id: str, binding_id: str) -> None:
    async with runtime.transaction() as session:
        row = await session.get(ChannelBindingRow, binding_id)
        if row is None or row.tenant_id != tenant_id:
            raise AppError(ErrorCode.NOT_FOUND, "No such channel binding.")
        await session.delete(row)
    runtime.configs.clear()


# --- the factory: stored config → live plugin ---


async def _connector_of_kind(
    runtime: Runtime, *, tenant_id: str, kinds: list[str]
) -> ConnectorConfigRow | None:
    key = ("connector", tenant_id, *kinds)
    found, record = runtime.configs.get(key)
    if not found:
        async with runtime.transaction() as session:
            record = await repository.connector_of_kind(session, tenant_id=tenant_id, kinds=kinds)
        runtime.configs.put(key, record)
    return record  # type: ignore[no-any-return]


def build_connector(runtime: Runtime, record: ConnectorConfigRow) -> Connector:
    cls = connector_class(record.kind)
    settings, secrets = validate_config(record.kind, record.settings, record.secrets)
    downstream = runtime.pool.get(
        f"{record.kind}:{record.id}",
        cls.base_url(settings),
        read_timeout=cls.read_timeout(settings),
        guarded=True,
    )
    connector = cls(
        ConnectorContext(
            connector_id=record.id,
            tenant_id=record.tenant_id,
            settings=settings,
            secrets=secrets,
            downstream=downstream,
            cache=runtime.platform.stores.cache,
        )
    )
    if isinstance(connector, RestCrmConnector):
        connector.default_cache_ttl = runtime.settings.crm_cache_ttl
    return connector


async def crm_for_tenant(runtime: Runtime, *, tenant_id: str) -> CrmConnector:
    record = await _connector_of_kind(runtime, tenant_id=tenant_id, kinds=["crm_rest"])
    if record is None:
        found, record = runtime.configs.get(("demo", tenant_id))
        if not found:
            record = demo_connector_config(runtime.settings, tenant_id)
            runtime.configs.put(("demo", tenant_id), record)
    if record is None:
        raise AppError(ErrorCode.NOT_FOUND, "No CRM is connected for this tenant.")
    connector = build_connector(runtime, record)
    assert isinstance(connector, CrmConnector)
    return connector


async def ticket_connector_for(
    runtime: Runtime, *, tenant_id: str, system: TicketSystem | None
) -> tuple[TicketConnector, str]:
    kinds = [system.value] if system is not None else list(TICKET_KINDS)
    record = await _connector_of_kind(runtime, tenant_id=tenant_id, kinds=kinds)
    if record is None:
        raise AppError(
            ErrorCode.NOT_FOUND,
            f"No {system.value if system else 'ticketing'} connector is configured for this tenant.",
        )
    connector = build_connector(runtime, record)
    assert isinstance(connector, TicketConnector)
    return connector, record.id


async def ticket_connector_by_id(runtime: Runtime, *, kind: str, connector_id: str) -> TicketConnector:
    if connector_id == DEMO_CONNECTOR_ID:
        raise AppError(ErrorCode.NOT_FOUND, "No such connector.")
    async with runtime.transaction() as session:
        record = await repository.get_connector(session, connector_id=connector_id)
    if record is None or record.kind != kind or not record.enabled:
        raise AppError(ErrorCode.NOT_FOUND, "No such connector.")
    connector = build_connector(runtime, record)
    assert isinstance(connector, TicketConnector)
    return connector


def channel_downstream(
    runtime: Runtime, channel: str, *, own_base: str | None = None, external_id: str = ""
) -> Downstream:
    """The messenger platform's API: the fleet's configured base, or the base a binding names for itself
    (a stand-in for a trial), which is a tenant's choice: its own client and breaker, through the
    address guard."""
    if own_base:
        return runtime.pool.get(f"{channel}:{external_id}", own_base, guarded=True)
    base = runtime.settings.telegram_api_base if channel == "telegram" else runtime.settings.whatsapp_api_base
    return runtime.pool.get(channel, base)


async def verified_account(
    runtime: Runtime, channel: str, settings: PluginSettings, secrets: PluginSettings
) -> str:
    """The account id the platform confirms for these credentials. Asked at the fleet's API base: a
    binding's own base could answer anything, so it is trusted for this only when the operator
    allow-listed it (a stand-in on this machine)."""
    cls = channel_class(channel)
    claimed = cls.external_id_of(settings, secrets)
    own_base: str | None = getattr(settings, "api_base", None)
    if own_base:
        try:
            validate_base_url(own_base)
        except UrlRefused as exc:
            raise AppError(ErrorCode.VALIDATION_ERROR, f"settings.api_base: {exc}") from exc
    trusted = own_base if own_base and runtime.pool.guard.allowlisted(own_base) else None
    downstream = channel_downstream(runtime, channel, own_base=trusted, external_id=claimed)
    return await cls.verified_external_id(settings, secrets, downstream)


def build_channel(runtime: Runtime, record: ChannelBindingRow) -> ChannelPlugin:
    cls = channel_class(record.channel)
    settings, secrets, _ = validate_binding(record.channel, record.settings, record.secrets)
    plugin = cls(
        BindingContext(
            binding_id=record.id,
            tenant_id=record.tenant_id,
            external_id=record.external_id,
            settings=settings,
            secrets=secrets,
            downstream=channel_downstream(
                runtime,
                record.channel,
                own_base=getattr(settings, "api_base", None),
                external_id=record.external_id,
            ),
        )
    )
    if isinstance(plugin, WhatsAppChannel):
        plugin.default_api_version = runtime.settings.whatsapp_api_version
    return plugin


async def channel_for(runtime: Runtime, *, channel: str, external_id: str) -> ChannelPlugin:
    found, record = runtime.configs.get(("binding", channel, external_id))
    if not found:
        async with runtime.transaction() as session:
            record = await repository.binding_by_external_id(
                session, channel=channel, external_id=external_id
            )
        runtime.configs.put(("binding", channel, external_id), record)
    if record is None or not record.enabled:
        raise AppError(ErrorCode.NOT_FOUND, f"No {channel} account {external_id} is bound here.")
    return build_channel(runtime, record)
