"""Messenger traffic: webhooks in (verify, drop duplicates, normalise, hand to chat, send the reply) and
deliveries out (split, retried with backoff, recorded per idempotency key so nothing is sent twice)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from sqlalchemy.exc import IntegrityError

from switchboard_integrations.channels import repository
from switchboard_integrations.channels.base import ChannelEvent, ChannelPlugin, SendError
from switchboard_integrations.channels.dedup import claim_event, release_event
from switchboard_integrations.channels.models import ChannelDelivery
from switchboard_integrations.channels.whatsapp import WhatsAppChannel
from switchboard_integrations.connectors.service import channel_for
from switchboard_integrations.metrics import CHANNEL_SENDS, WEBHOOKS
from switchboard_integrations.runtime import Runtime
from switchboard_shared.contracts.chat import Channel, InboundMessage
from switchboard_shared.contracts.integrations import DeliveryResult
from switchboard_shared.errors import AppError, ErrorCode
from switchboard_shared.stores import LockTimeout, StoreUnavailable

log = structlog.get_logger(__name__)
MESSENGERS = frozenset({Channel.TELEGRAM, Channel.WHATSAPP})
MAX_RETRY_WAIT = 30.0


def parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise AppError(ErrorCode.BAD_REQUEST, "The webhook body is not valid JSON.") from exc


def split_external_key(channel: Channel, external_key: str) -> tuple[str, str]:
    """Messenger conversations are keyed ``<bot or phone number id>:<chat or wa id>``."""
    account, sep, recipient = external_key.partition(":")
    if not sep or not account or not recipient:
        raise AppError(
            ErrorCode.BAD_REQUEST, f"A {channel.value} external key looks like '<account id>:<chat id>'."
        )
    return account, recipient


# --- outbound ---


def _result(row: ChannelDelivery, *, duplicate: bool) -> DeliveryResult:
    return DeliveryResult(
        id=row.id,
        channel=Channel(row.channel),
        status=row.status,  # type: ignore[arg-type]
        provider_message_ids=list(row.provider_message_ids),
        duplicate=duplicate,
    )


async def _send_with_retries(runtime: Runtime, plugin: ChannelPlugin, recipient: str, chunk: str) -> str:
    attempts = max(1, runtime.settings.channel_send_attempts)
    delay = runtime.settings.channel_send_backoff
    channel = plugin.channel.value
    for attempt in range(1, attempts + 1):
        try:
            message_id = await plugin.send_chunk(recipient, chunk)
        except SendError as exc:
            if not exc.retryable or attempt == attempts:
                CHANNEL_SENDS.labels(channel, "failed").inc()
                raise AppError(
                    ErrorCode.UPSTREAM_ERROR,
                    f"Sending on {channel} failed: {exc}",
                    details={"attempts": attempt},
                ) from exc
            wait = min(exc.retry_after if exc.retry_after is not None else delay, MAX_RETRY_WAIT)
        except AppError as exc:
            # Unreachable is worth another try. An open breaker is not, and neither is a timeout: the
            # platform may have sent the message, and a second copy is worse than a logged failure.
            retryable = exc.code is ErrorCode.UPSTREAM_UNAVAILABLE and "circuit open" not in exc.message
            if not retryable or attempt == attempts:
                CHANNEL_SENDS.labels(channel, "failed").inc()
                raise
            wait = delay
        else:
            CHANNEL_SENDS.labels(channel, "sent").inc()
            return message_id
        CHANNEL_SENDS.labels(channel, "retry").inc()
        log.warning("channel_send_retry", channel=channel, attempt=attempt, wait=wait)
        await asyncio.sleep(wait)
        delay *= 2
    raise AssertionError("unreachable")


async def deliver(
    runtime: Runtime,
    *,
    tenant_id: str,
    channel: Channel,
    external_key: str,
    text: str,
    idempotency_key: str,
) -> DeliveryResult:
    """Send ``text`` to a messenger conversation once per ``idempotency_key``, however often it is asked."""
    if channel not in MESSENGERS:
        raise AppError(ErrorCode.BAD_REQUEST, f"The {channel.value} channel has nothing to deliver to.")
    account, recipient = split_external_key(channel, external_key)
    plugin = await channel_for(runtime, channel=channel.value, external_id=account)
    if plugin.context.tenant_id != tenant_id:
        raise AppError(ErrorCode.NOT_FOUND, f"No {channel.value} account {account} is bound here.")
    try:
        async with runtime.platform.stores.locks.hold(
            f"delivery:{tenant_id}:{idempotency_key}", ttl=120.0, timeout=60.0
        ):
            return await _deliver_locked(
                runtime,
                plugin,
                tenant_id=tenant_id,
                external_key=external_key,
                recipient=recipient,
                text=text,
                idempotency_key=idempotency_key,
            )
    except LockTimeout as exc:
        raise AppError(ErrorCode.CONFLICT, "This delivery is already in progress.") from exc
    except StoreUnavailable:
        log.warning("lock_store_unavailable_delivering_without_lock")
        return await _deliver_locked(
            runtime,
            plugin,
            tenant_id=tenant_id,
            external_key=external_key,
            recipient=recipient,
            text=text,
            idempotency_key=idempotency_key,
        )


async def _deliver_locked(
    runtime: Runtime,
    plugin: ChannelPlugin,
    *,
    tenant_id: str,
    external_key: str,
    recipient: str,
    text: str,
    idempotency_key: str,
) -> DeliveryResult:
    async with runtime.transaction() as session:
        row = await repository.delivery_by_key(session, tenant_id=tenant_id, idempotency_key=idempotency_key)
        if row is None:
            row = ChannelDelivery(
                tenant_id=tenant_id,
                channel=plugin.channel.value,
                external_key=external_key,
                idempotency_key=idempotency_key,
                provider_message_ids=[],
                details={},
            )
            session.add(row)
            try:
                await session.flush()
            except IntegrityError as exc:
                raise AppError(ErrorCode.CONFLICT, "This delivery is already in progress.") from exc
    if row.status == "sent":
        return _result(row, duplicate=True)
    chunks = plugin.chunks(text)
    sent: list[str] = list(row.provider_message_ids)
    error: AppError | None = None
    attempts = row.attempts
    # Chunks already sent by an earlier, interrupted attempt are not sent again.
    for chunk in chunks[len(sent) :]:
        attempts += 1
        try:
            sent.append(await _send_with_retries(runtime, plugin, recipient, chunk))
        except AppError as exc:
            error = exc
            break
        async with runtime.transaction() as session:
            await _save(session, row.id, sent=sent, attempts=attempts, status="pending", error=None)
    status = "failed" if error is not None else "sent"
    async with runtime.transaction() as session:
        saved = await _save(
            session,
            row.id,
            sent=sent,
            attempts=attempts,
            status=status,
            error=error.message if error else None,
        )
    if error is not None:
        raise error
    return _result(saved, duplicate=False)


async def _save(
    session: Any, delivery_id: str, *, sent: list[str], attempts: int, status: str, error: str | None
) -> ChannelDelivery:
    row: ChannelDelivery | None = await session.get(ChannelDelivery, delivery_id)
    assert row is not None
    row.provider_message_ids = list(sent)
    row.provider_message_id = sent[0] if sent else None
    row.attempts = attempts
    row.status = status
    row.last_error = error
    await session.flush()
    return row


async def record_stored(
    runtime: Runtime, *, tenant_id: str, channel: Channel, external_key: str, idempotency_key: str
) -> DeliveryResult:
    """Web and API conversations have nothing to send to (the widget reads chat); the row still makes
    the operator's reply idempotent on those channels."""
    try:
        async with runtime.transaction() as session:
            existing = await repository.delivery_by_key(
                session, tenant_id=tenant_id, idempotency_key=idempotency_key
            )
            if existing is not None:
                return _result(existing, duplicate=True)
            row = ChannelDelivery(
                tenant_id=tenant_id,
                channel=channel.value,
                external_key=external_key,
                idempotency_key=idempotency_key,
                status="stored",
                provider_message_ids=[],
                details={},
            )
            session.add(row)
    except IntegrityError:
        async with runtime.transaction() as session:
            existing = await repository.delivery_by_key(
                session, tenant_id=tenant_id, idempotency_key=idempotency_key
            )
            assert existing is not None
            return _result(existing, duplicate=True)
    return _result(row, duplicate=False)


# --- inbound ---


@dataclass(slots=True)
class WebhookOutcome:
    processed: int = 0
    duplicates: int = 0
    ignored: int = 0

    def body(self) -> dict[str, Any]:
        return {
            "ok": True,
            "processed": self.processed,
            "duplicates": self.duplicates,
            "ignored": self.ignored,
        }


async def handle_webhook(
    runtime: Runtime, *, channel: Channel, external_id: str, headers: Mapping[str, str], body: bytes
) -> WebhookOutcome:
    plugin = await channel_for(runtime, channel=channel.value, external_id=external_id)
    try:
        plugin.verify(headers, body)
    except AppError:
        WEBHOOKS.labels(channel.value, "forged").inc()
        log.warning("webhook_forged", channel=channel.value, account=external_id)
        raise
    try:
        events = plugin.parse(parse_json(body))
    except AppError:
        WEBHOOKS.labels(channel.value, "malformed").inc()
        raise
    outcome = WebhookOutcome()
    for event in events:
        if event.kind == "ignore":
            outcome.ignored += 1
            WEBHOOKS.labels(channel.value, "ignored").inc()
            continue
        tenant_id = plugin.context.tenant_id
        if not await claim_event(
            runtime, source=plugin.source, event_key=event.event_key, tenant_id=tenant_id
        ):
            outcome.duplicates += 1
            WEBHOOKS.labels(channel.value, "duplicate").inc()
            continue
        try:
            await _process(runtime, plugin, event)
        except BaseException:
            await release_event(runtime, source=plugin.source, event_key=event.event_key)
            raise
        outcome.processed += 1
        WEBHOOKS.labels(channel.value, "processed").inc()
    return outcome


async def _process(runtime: Runtime, plugin: ChannelPlugin, event: ChannelEvent) -> None:
    tenant_id = plugin.context.tenant_id
    settings = runtime.settings
    if event.kind == "status":
        await _record_status(runtime, plugin, event)
        return
    canned = {
        "start": settings.start_text,
        "edited": settings.edited_text,
        "unsupported": settings.unsupported_text,
    }
    if event.kind in canned:
        await deliver(
            runtime,
            tenant_id=tenant_id,
            channel=plugin.channel,
            external_key=event.external_key,
            text=canned[event.kind],
            idempotency_key=f"{event.kind}:{plugin.source}:{event.event_key}",
        )
        return
    result = await runtime.chat.inbound(
        tenant_id=tenant_id,
        message=InboundMessage(
            channel=plugin.channel,
            end_user_id=event.end_user_id,
            external_key=event.external_key,
            text=event.text,
            idempotency_key=f"{plugin.source}:{event.event_key}",
            profile=event.profile,
        ),
    )
    if result.reply is not None and result.reply.text.strip():
        await deliver(
            runtime,
            tenant_id=tenant_id,
            channel=plugin.channel,
            external_key=event.external_key,
            text=result.reply.text,
            idempotency_key=f"reply:{result.reply.id}",
        )


async def _record_status(runtime: Runtime, plugin: ChannelPlugin, event: ChannelEvent) -> None:
    assert isinstance(plugin, WhatsAppChannel) and event.provider_message_id
    async with runtime.transaction() as session:
        row = await repository.delivery_by_provider_id(
            session,
            tenant_id=plugin.context.tenant_id,
            channel=plugin.channel.value,
            provider_message_id=event.provider_message_id,
        )
        if row is None:
            log.info("status_for_unknown_message", channel=plugin.channel.value, status=event.status)
            return
        row.provider_status = event.status
        if event.details:
            row.details = {**row.details, "status_errors": event.details.get("errors", [])}
