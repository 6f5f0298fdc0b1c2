"""Messenger traffic: webhooks in (verify, drop duplicates, normalise, hand to chat, send the reply) and
deliveries out (rendered for the platform, split, retried with backoff, recorded per idempotency key so
nothing is sent twice; what fails for a passing reason is retried in the background)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import structlog
from sqlalchemy.exc import IntegrityError
from tenacity import RetryCallState, Retrying, wait_exponential_jitter

from switchboard_integrations.channels import repository
from switchboard_integrations.channels.base import ChannelEvent, ChannelPlugin, SendError
from switchboard_integrations.channels.dedup import claim_event, release_event
from switchboard_integrations.channels.models import ChannelDeliveryRow
from switchboard_integrations.channels.render import OutboundText, Source
from switchboard_integrations.channels.texts import (
    DEFAULT_LANGUAGE,
    language_of_text,
    normalise_language,
    system_text,
)
from switchboard_integrations.channels.whatsapp import WhatsAppChannel
from switchboard_integrations.connectors.service import channel_for
from switchboard_integrations.db import as_utc, utcnow
from switchboard_integrations.metrics import CHANNEL_SENDS, WEBHOOKS
from switchboard_integrations.runtime import Runtime
from switchboard_integrations.settings import IntegrationsSettings
from switchboard_shared.contracts.chat import Channel, InboundMessage, Message
from switchboard_shared.contracts.integrations import DeliveryResult
from switchboard_shared.errors import AppError, ErrorCode
from switchboard_shared.language import answer_language
from switchboard_shared.stores import LockTimeout, StoreUnavailable

log = structlog.get_logger(__name__)
MESSENGERS = frozenset({Channel.TELEGRAM, Channel.WHATSAPP})
MAX_RETRY_WAIT = 30.0
SEND_LEASE = 120.0
LANGUAGE_MEMORY = 30 * 86_400.0


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


def _result(row: ChannelDeliveryRow, *, duplicate: bool) -> DeliveryResult:
    return DeliveryResult(
        id=row.id,
        channel=Channel(row.channel),
        status=row.status,  # type: ignore[arg-type]
        provider_message_ids=list(row.provider_message_ids),
        duplicate=duplicate,
        attempts=row.attempts,
        last_error=row.last_error,
        next_attempt_at=as_utc(row.next_attempt_at) if row.next_attempt_at else None,
    )


class DeliveryFailed(AppError):
    """A send that did not go through; ``retryable`` when trying again later may work."""

    def __init__(self, error: AppError, *, retryable: bool) -> None:
        super().__init__(error.code, error.message, details=error.details, headers=error.headers)
        self.retryable = retryable


def _why(exc: BaseException) -> str:
    """The reason of a failed send for the logs: the error and the transport error beneath it."""
    reason = str(exc)
    cause = exc.__cause__
    while cause is not None:
        if str(cause) and str(cause) not in reason:
            reason = f"{reason} ({type(cause).__name__}: {cause})"
        cause = cause.__cause__
    return reason[:500]


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
                raise DeliveryFailed(
                    AppError(
                        ErrorCode.UPSTREAM_ERROR,
                        f"Sending on {channel} failed: {exc}",
                        details={"attempts": attempt},
                    ),
                    retryable=exc.retryable,
                ) from exc
            wait = min(exc.retry_after if exc.retry_after is not None else delay, MAX_RETRY_WAIT)
            reason = str(exc)
        except AppError as exc:
            # Unreachable is worth another try. An open breaker is not (now), and neither is a timeout: the
            # platform may have sent the message, and a second copy is worse than a logged failure.
            unreachable = exc.code is ErrorCode.UPSTREAM_UNAVAILABLE
            if not unreachable or "circuit open" in exc.message or attempt == attempts:
                CHANNEL_SENDS.labels(channel, "failed").inc()
                raise DeliveryFailed(exc, retryable=unreachable) from exc
            wait = delay
            reason = _why(exc)
        else:
            CHANNEL_SENDS.labels(channel, "sent").inc()
            return message_id
        CHANNEL_SENDS.labels(channel, "retry").inc()
        log.warning(
            "channel_send_retry",
            channel=channel,
            account_id=plugin.context.external_id,
            attempt=attempt,
            wait=wait,
            reason=reason,
        )
        await asyncio.sleep(wait)
        delay *= 2
    raise AssertionError("unreachable")


def retry_delay(settings: IntegrationsSettings, attempt: int) -> float:
    """The background retry schedule: exponential with jitter (tenacity's), capped."""
    state = RetryCallState(Retrying(), None, (), {})
    state.attempt_number = max(1, attempt)
    wait = wait_exponential_jitter(
        initial=settings.delivery_retry_initial, max=settings.delivery_retry_max, jitter=1.0
    )
    return float(wait(state))


@dataclass(slots=True)
class Delivery:
    result: DeliveryResult
    created: bool = False


async def deliver(
    runtime: Runtime,
    *,
    tenant_id: str,
    channel: Channel,
    external_key: str,
    message: OutboundText,
    idempotency_key: str,
    background: bool = False,
    handoff_id: str | None = None,
    operator_id: str | None = None,
    lock_timeout: float = 60.0,
) -> Delivery:
    """Send ``message`` to a messenger conversation once per ``idempotency_key``, however often it is asked.

    Asking again under a key that failed tries again. With ``background`` a send that fails for a passing
    reason stays ``pending`` and the retrier tries again later with backoff instead of raising."""
    if channel not in MESSENGERS:
        raise AppError(ErrorCode.BAD_REQUEST, f"The {channel.value} channel has nothing to deliver to.")
    account, recipient = split_external_key(channel, external_key)
    plugin = await channel_for(runtime, channel=channel.value, external_id=account)
    if plugin.context.tenant_id != tenant_id:
        raise AppError(ErrorCode.NOT_FOUND, f"No {channel.value} account {account} is bound here.")
    job = DeliveryJob(
        plugin=plugin,
        tenant_id=tenant_id,
        external_key=external_key,
        recipient=recipient,
        message=message,
        idempotency_key=idempotency_key,
        background=background,
        handoff_id=handoff_id,
        operator_id=operator_id,
    )
    try:
        async with runtime.platform.stores.locks.hold(
            f"delivery:{tenant_id}:{idempotency_key}", ttl=SEND_LEASE, timeout=lock_timeout
        ):
            return await _deliver_locked(runtime, job)
    except LockTimeout as exc:
        raise AppError(ErrorCode.CONFLICT, "This delivery is already in progress.") from exc
    except StoreUnavailable:
        log.warning("lock_store_unavailable_delivering_without_lock")
        return await _deliver_locked(runtime, job)


@dataclass(slots=True)
class DeliveryJob:
    plugin: ChannelPlugin
    tenant_id: str
    external_key: str
    recipient: str
    message: OutboundText
    idempotency_key: str
    background: bool
    handoff_id: str | None = None
    operator_id: str | None = None


async def _deliver_locked(runtime: Runtime, job: DeliveryJob) -> Delivery:
    created = False
    async with runtime.transaction() as session:
        row = await repository.delivery_by_key(
            session, tenant_id=job.tenant_id, idempotency_key=job.idempotency_key
        )
        if row is None:
            row = ChannelDeliveryRow(
                tenant_id=job.tenant_id,
                channel=job.plugin.channel.value,
                external_key=job.external_key,
                idempotency_key=job.idempotency_key,
                provider_message_ids=[],
                details={},
                payload=job.message.to_json(),
                handoff_id=job.handoff_id,
                operator_id=job.operator_id,
                # While this call sends, the row is leased to it; if the process dies, the retrier takes over.
                next_attempt_at=utcnow() + timedelta(seconds=SEND_LEASE) if job.background else None,
            )
            session.add(row)
            try:
                await session.flush()
            except IntegrityError as exc:
                raise AppError(ErrorCode.CONFLICT, "This delivery is already in progress.") from exc
            created = True
    if row.status == "sent":
        return Delivery(_result(row, duplicate=True))
    # What was stored first is what is sent: a retry never changes the words.
    message = OutboundText.from_json(row.payload) if row.payload else job.message
    chunks = job.plugin.render(message)
    sent: list[str] = list(row.provider_message_ids)
    error: DeliveryFailed | None = None
    attempts = row.attempts
    # Chunks already sent by an earlier, interrupted attempt are not sent again.
    for chunk in chunks[len(sent) :]:
        attempts += 1
        try:
            sent.append(await _send_with_retries(runtime, job.plugin, job.recipient, chunk))
        except DeliveryFailed as exc:
            error = exc
            break
        async with runtime.transaction() as session:
            await _save(session, row.id, sent=sent, attempts=attempts, status="pending", error=None)
    status, next_attempt = "sent", None
    if error is not None:
        status = "failed"
        age = (utcnow() - as_utc(row.created_at)).total_seconds()
        if job.background and error.retryable and age < runtime.settings.delivery_retry_window:
            status = "pending"
            next_attempt = utcnow() + timedelta(seconds=retry_delay(runtime.settings, attempts))
        log.warning(
            "channel_delivery_failed",
            channel=job.plugin.channel.value,
            account_id=job.plugin.context.external_id,
            delivery_id=row.id,
            status=status,
            attempts=attempts,
            reason=_why(error),
        )
    async with runtime.transaction() as session:
        saved = await _save(
            session,
            row.id,
            sent=sent,
            attempts=attempts,
            status=status,
            error=error.message if error else None,
            next_attempt_at=next_attempt,
        )
    if error is not None and not job.background:
        raise error
    return Delivery(_result(saved, duplicate=False), created=created)


async def _save(
    session: Any,
    delivery_id: str,
    *,
    sent: list[str],
    attempts: int,
    status: str,
    error: str | None,
    next_attempt_at: datetime | None = None,
) -> ChannelDeliveryRow:
    row: ChannelDeliveryRow | None = await session.get(ChannelDeliveryRow, delivery_id)
    assert row is not None
    row.provider_message_ids = list(sent)
    row.provider_message_id = sent[0] if sent else None
    row.attempts = attempts
    row.status = status
    row.last_error = error
    if status != "pending" or next_attempt_at is not None:
        row.next_attempt_at = next_attempt_at
    await session.flush()
    return row


async def record_stored(
    runtime: Runtime,
    *,
    tenant_id: str,
    channel: Channel,
    external_key: str,
    idempotency_key: str,
    message: OutboundText,
    handoff_id: str | None = None,
    operator_id: str | None = None,
) -> Delivery:
    """Web and API conversations have nothing to send to (the widget reads chat); the row still makes
    the operator's reply idempotent on those channels."""
    try:
        async with runtime.transaction() as session:
            existing = await repository.delivery_by_key(
                session, tenant_id=tenant_id, idempotency_key=idempotency_key
            )
            if existing is not None:
                return Delivery(_result(existing, duplicate=True))
            row = ChannelDeliveryRow(
                tenant_id=tenant_id,
                channel=channel.value,
                external_key=external_key,
                idempotency_key=idempotency_key,
                status="stored",
                provider_message_ids=[],
                details={},
                payload=message.to_json(),
                handoff_id=handoff_id,
                operator_id=operator_id,
            )
            session.add(row)
    except IntegrityError:
        async with runtime.transaction() as session:
            existing = await repository.delivery_by_key(
                session, tenant_id=tenant_id, idempotency_key=idempotency_key
            )
            assert existing is not None
            return Delivery(_result(existing, duplicate=True))
    return Delivery(_result(row, duplicate=False), created=True)


async def retry_due_deliveries(runtime: Runtime, *, limit: int = 50) -> int:
    """One round of the background retrier: every pending delivery whose time has come, tried once more.
    Returns how many were tried. Replicas share the work through the per-delivery lock."""
    async with runtime.transaction() as session:
        due = await repository.due_deliveries(session, now=utcnow(), limit=limit)
    tried = 0
    for row in due:
        try:
            await _retry_one(runtime, row)
            tried += 1
        except AppError as exc:
            log.warning("delivery_retry_skipped", delivery_id=row.id, code=exc.code, reason=exc.message)
    return tried


async def _retry_one(runtime: Runtime, row: ChannelDeliveryRow) -> None:
    channel = Channel(row.channel)
    if not row.payload:
        await _give_up(runtime, row, row.last_error or "Nothing stored to send again.")
        return
    try:
        await deliver(
            runtime,
            tenant_id=row.tenant_id,
            channel=channel,
            external_key=row.external_key,
            message=OutboundText.from_json(row.payload),
            idempotency_key=row.idempotency_key,
            background=True,
            lock_timeout=0.5,
        )
    except AppError as exc:
        if exc.code is not ErrorCode.NOT_FOUND:
            raise
        # The binding is gone: nobody can deliver this any more.
        await _give_up(runtime, row, exc.message)


async def _give_up(runtime: Runtime, row: ChannelDeliveryRow, reason: str) -> None:
    async with runtime.transaction() as session:
        await _save(
            session,
            row.id,
            sent=list(row.provider_message_ids),
            attempts=row.attempts,
            status="failed",
            error=reason,
        )


async def run_delivery_retrier(runtime: Runtime) -> None:
    """The lifespan's background task: a retry round every ``delivery_retry_seconds``."""
    interval = runtime.settings.delivery_retry_seconds
    while True:
        await asyncio.sleep(interval)
        try:
            await retry_due_deliveries(runtime)
        except Exception as exc:  # the loop must outlive a bad round (DB blip …)
            log.warning("delivery_retry_round_failed", reason=_why(exc))


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
        log.warning("webhook_forged", channel=channel.value, account_id=external_id)
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


async def _language(runtime: Runtime, plugin: ChannelPlugin, event: ChannelEvent) -> str:
    """The customer's language: what they wrote, else their messenger's setting, else what this chat last
    wrote in (remembered for a month), else English."""
    cache = runtime.platform.stores.cache
    key = f"lang:{plugin.source}:{event.external_key}"
    written = language_of_text(event.text) if event.kind == "text" else None  # "/start" says nothing
    told = written or normalise_language(event.profile.locale if event.profile else None)
    try:
        if told is not None:
            await cache.set(key, told.encode(), ttl=LANGUAGE_MEMORY)
            return told
        remembered = await cache.get(key)
    except StoreUnavailable:
        return told or DEFAULT_LANGUAGE
    return remembered.decode() if remembered else DEFAULT_LANGUAGE


def answer_text(reply: Message, language: str) -> OutboundText:
    """The assistant's answer as it goes to a messenger: Markdown, with the sources it cites."""
    sources = tuple(Source(index=c.index, title=c.title, url=c.url) for c in reply.citations)
    return OutboundText(
        text=reply.text,
        format="markdown",
        sources=sources,
        language=answer_language(reply.text) if language_of_text(reply.text) else language,
    )


async def _process(runtime: Runtime, plugin: ChannelPlugin, event: ChannelEvent) -> None:
    tenant_id = plugin.context.tenant_id
    if event.kind == "status":
        await _record_status(runtime, plugin, event)
        return
    language = await _language(runtime, plugin, event)
    if event.kind in ("start", "edited", "unsupported"):
        await deliver(
            runtime,
            tenant_id=tenant_id,
            channel=plugin.channel,
            external_key=event.external_key,
            message=OutboundText(
                text=system_text(event.kind, language, runtime.settings.system_texts), language=language
            ),
            idempotency_key=f"{event.kind}:{plugin.source}:{event.event_key}",
            background=True,
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
            message=answer_text(result.reply, language),
            idempotency_key=f"reply:{result.reply.id}",
            background=True,
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
