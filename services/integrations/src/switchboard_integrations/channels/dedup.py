"""Webhook duplicate detection in two layers: the idempotency store (fast, Redis in production) and a
unique row in the database (durable), so losing Redis can never make an event run twice."""

from __future__ import annotations

import structlog
from sqlalchemy.exc import IntegrityError

from switchboard_integrations.channels import repository
from switchboard_integrations.runtime import Runtime
from switchboard_shared.stores import StoreUnavailable

log = structlog.get_logger(__name__)


def _store_down(source: str) -> None:
    channel, _, account = source.partition(":")
    log.warning("idempotency_store_unavailable", channel=channel, account_id=account)


def _store_key(source: str, event_key: str) -> str:
    return f"webhook:{source}:{event_key}"


async def claim_event(runtime: Runtime, *, source: str, event_key: str, tenant_id: str) -> bool:
    """True when this call is the first to see the event (and must process it)."""
    try:
        fresh = await runtime.platform.stores.idempotency.claim(
            _store_key(source, event_key), ttl=runtime.settings.webhook_dedup_ttl
        )
    except StoreUnavailable:
        _store_down(source)
        fresh = True
    if not fresh:
        return False
    try:
        async with runtime.transaction() as session:
            await repository.add_receipt(session, source=source, event_key=event_key, tenant_id=tenant_id)
    except IntegrityError:
        return False
    return True


async def release_event(runtime: Runtime, *, source: str, event_key: str) -> None:
    """Processing failed: forget the event so the platform's retry is processed."""
    async with runtime.transaction() as session:
        await repository.remove_receipt(session, source=source, event_key=event_key)
    try:
        await runtime.platform.stores.idempotency.forget(_store_key(source, event_key))
    except StoreUnavailable:
        _store_down(source)
