"""Tickets in Zendesk or Jira: idempotent creation (a retried create never makes two tickets), listing,
status refresh, and comments."""

from __future__ import annotations

from datetime import timedelta

import structlog
from sqlalchemy.exc import IntegrityError

from switchboard_integrations.connectors.base import TicketConnector
from switchboard_integrations.connectors.service import ticket_connector_for
from switchboard_integrations.db import as_utc, utcnow
from switchboard_integrations.metrics import TICKETS
from switchboard_integrations.runtime import Runtime
from switchboard_integrations.tickets import repository
from switchboard_integrations.tickets.models import TicketRow
from switchboard_shared.contracts.analytics import EventType
from switchboard_shared.contracts.common import Page
from switchboard_shared.contracts.integrations import CreateTicket, Ticket, TicketSystem
from switchboard_shared.errors import AppError, ErrorCode

log = structlog.get_logger(__name__)
# A create that has not finished in this long is taken to have died; a retry may take it over.
STALE_CREATE = timedelta(minutes=2)


def ticket_out(row: TicketRow) -> Ticket:
    assert row.external_id is not None
    return Ticket(
        id=row.id,
        tenant_id=row.tenant_id,
        system=TicketSystem(row.system),
        external_id=row.external_id,
        url=row.url,
        status=row.status,
        conversation_id=row.conversation_id,
        created_at=as_utc(row.created_at),
    )


async def _reserve(
    runtime: Runtime, *, tenant_id: str, request: CreateTicket, system: TicketSystem, connector_id: str
) -> tuple[TicketRow, bool]:
    """The row that guards one creation: (row, True) when this call must create the external ticket."""
    for _ in range(2):
        async with runtime.transaction() as session:
            existing = await repository.by_idempotency_key(
                session, tenant_id=tenant_id, key=request.idempotency_key
            )
            if existing is not None:
                if existing.external_id is not None:
                    return existing, False
                if utcnow() - as_utc(existing.updated_at) < STALE_CREATE:
                    raise AppError(ErrorCode.CONFLICT, "A ticket for this idempotency key is being created.")
                existing.updated_at = utcnow()
                return existing, True
        row = TicketRow(
            tenant_id=tenant_id,
            system=system.value,
            connector_id=connector_id,
            idempotency_key=request.idempotency_key,
            conversation_id=request.conversation_id,
            status="creating",
            own_comment_ids=[],
        )
        try:
            async with runtime.transaction() as session:
                session.add(row)
        except IntegrityError:
            continue
        return row, True
    raise AppError(ErrorCode.CONFLICT, "A ticket for this idempotency key is being created.")


async def create_ticket(runtime: Runtime, *, tenant_id: str, request: CreateTicket) -> tuple[Ticket, bool]:
    """Returns the ticket and whether this call created it (False: an earlier call with the same key did)."""
    connector, connector_id = await ticket_connector_for(runtime, tenant_id=tenant_id, system=request.system)
    row, must_create = await _reserve(
        runtime, tenant_id=tenant_id, request=request, system=connector.system, connector_id=connector_id
    )
    if not must_create:
        return ticket_out(row), False
    try:
        external = await connector.create_ticket(
            request, idempotency_key=f"switchboard:{tenant_id}:{request.idempotency_key}"
        )
    except BaseException:
        TICKETS.labels(connector.system.value, "failed").inc()
        async with runtime.transaction() as session:
            stale = await session.get(TicketRow, row.id)
            if stale is not None and stale.external_id is None:
                await session.delete(stale)
        raise
    async with runtime.transaction() as session:
        saved = await session.get(TicketRow, row.id)
        assert saved is not None
        saved.external_id = external.external_id
        saved.url = external.url
        saved.status = external.status
        saved.requester_external_id = external.requester_external_id
        await session.flush()
    TICKETS.labels(connector.system.value, "created").inc()
    runtime.platform.analytics.emit(
        EventType.TICKET_CREATED,
        tenant_id=tenant_id,
        conversation_id=request.conversation_id,
        properties={"system": connector.system.value, "priority": request.priority},
        event_id=f"ticket-{saved.id}",
    )
    return ticket_out(saved), True


async def list_tickets(
    runtime: Runtime, *, tenant_id: str, conversation_id: str | None, limit: int, offset: int
) -> Page[Ticket]:
    async with runtime.transaction() as session:
        rows, total = await repository.list_tickets(
            session, tenant_id=tenant_id, conversation_id=conversation_id, limit=limit, offset=offset
        )
    return Page[Ticket](items=[ticket_out(row) for row in rows], total=total, limit=limit, offset=offset)


async def _load(runtime: Runtime, *, tenant_id: str, ticket_id: str) -> TicketRow:
    async with runtime.transaction() as session:
        row = await session.get(TicketRow, ticket_id)
    if row is None or row.tenant_id != tenant_id or row.external_id is None:
        raise AppError(ErrorCode.NOT_FOUND, "No such ticket.")
    return row


async def get_ticket(runtime: Runtime, *, tenant_id: str, ticket_id: str, refresh: bool) -> Ticket:
    row = await _load(runtime, tenant_id=tenant_id, ticket_id=ticket_id)
    if refresh:
        connector = await connector_for_ticket(runtime, row)
        assert row.external_id is not None
        status = await connector.get_status(row.external_id)
        async with runtime.transaction() as session:
            saved = await session.get(TicketRow, row.id)
            assert saved is not None
            saved.status = status
            await session.flush()
            row = saved
    return ticket_out(row)


async def connector_for_ticket(runtime: Runtime, row: TicketRow) -> TicketConnector:
    connector, connector_id = await ticket_connector_for(
        runtime, tenant_id=row.tenant_id, system=TicketSystem(row.system)
    )
    if connector_id != row.connector_id:
        log.warning("ticket_connector_replaced", ticket_id=row.id)
    return connector


async def add_customer_comment(runtime: Runtime, *, ticket_id: str, text: str) -> None:
    """A customer's message while a human owns the conversation, added to the ticket as theirs."""
    async with runtime.transaction() as session:
        row = await session.get(TicketRow, ticket_id)
    if row is None or row.external_id is None:
        return
    connector = await connector_for_ticket(runtime, row)
    comment_id = await connector.add_comment(
        row.external_id, f"Customer: {text}", author_id=row.requester_external_id
    )
    if comment_id is not None:
        async with runtime.transaction() as session:
            saved = await session.get(TicketRow, row.id)
            assert saved is not None
            saved.own_comment_ids = [*saved.own_comment_ids, comment_id][-200:]
