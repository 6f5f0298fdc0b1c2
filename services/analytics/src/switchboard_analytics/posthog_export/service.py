"""Forwards stored events to PostHog with the official client, from a transactional outbox.

The events table is the outbox: a cursor (``last_seq``) records how far the export got and only moves
after PostHog accepted a round, so an outage delays the export and loses nothing (PostHog de-duplicates
re-sent events by their uuid, derived from the event id). One replica at a time holds the cursor's lease.
The PostHog client sends from its own thread; our loop waits for it off the event loop, so neither
ingestion nor reports ever wait on PostHog. End-user ids are pseudonymised and properties PII-redacted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from switchboard_analytics.events.metrics import content_gap
from switchboard_analytics.events.models import StoredEventRow
from switchboard_analytics.posthog_export import repository
from switchboard_analytics.settings import AnalyticsSettings
from switchboard_shared.redaction import redact_value, tenant_pseudonym

log = structlog.get_logger(__name__)
CURSOR = "posthog"
EVENT_UUID_NAMESPACE = uuid.UUID("6f1d3c52-9a56-4b8e-a0c4-5e0d8c3b7a21")


def capture_payload(event: StoredEventRow, *, salt: str) -> dict[str, Any]:
    """The arguments of ``Posthog.capture`` for one stored event: no raw end-user id, no PII."""
    properties = redact_value("properties", event.properties)
    assert isinstance(properties, dict)
    gap = content_gap(event.type, event.properties)
    if gap is not None:
        # Content gaps in PostHog: filter on content_gap, break down by kb_ids, question or sources.
        properties["content_gap"] = gap
    properties.update(
        {
            "tenant_id": event.tenant_id,
            "conversation_id": event.conversation_id,
            "channel": event.channel,
            "source": event.source,
            "$process_person_profile": event.end_user_id is not None,
        }
    )
    distinct_id = (
        tenant_pseudonym(event.tenant_id, event.end_user_id, salt=salt)
        if event.end_user_id
        else f"tenant:{event.tenant_id}"
    )
    return {
        "event": event.type,
        "distinct_id": distinct_id,
        "properties": properties,
        "timestamp": event.occurred_at,
        "uuid": str(uuid.uuid5(EVENT_UUID_NAMESPACE, event.event_id)),
    }


class PostHogExporter:
    def __init__(
        self,
        settings: AnalyticsSettings,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        assert settings.posthog_api_key, "the PostHog export needs an API key"
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.settle = timedelta(seconds=settings.posthog_settle_seconds)
        self.owner = f"{socket.gethostname()[:30]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.exported = 0
        self.failures = 0
        self._errors: list[str] = []
        self._errors_lock = threading.Lock()
        self._task: asyncio.Task[None] | None = None
        # Imported only when the export is configured: posthog brings requests, urllib3 and httpx (some
        # 10 MB resident) that nothing else in the service uses.
        from posthog import Posthog

        self.client = Posthog(
            settings.posthog_api_key,
            host=settings.posthog_host,
            on_error=self._on_error,
            flush_at=min(settings.posthog_batch_size, 100),
            flush_interval=0.5,
            max_retries=0,  # the cursor retries: a failed round is re-sent as a whole
            timeout=settings.posthog_timeout_seconds,
            thread=1,
            disable_geoip=True,
            enable_exception_autocapture=False,
            enable_local_evaluation=False,
        )

    def _on_error(self, error: Exception, batch: list[Any]) -> None:
        with self._errors_lock:
            self._errors.append(f"{type(error).__name__}: {error}"[:300] + f" ({len(batch)} events)")

    def _send(self, payloads: list[dict[str, Any]]) -> str | None:
        """Runs in a worker thread: enqueue a round, wait for the client's thread to send it."""
        with self._errors_lock:
            self._errors.clear()
        for payload in payloads:
            event = payload.pop("event")
            self.client.capture(event, **payload)
        timeout = self.settings.posthog_timeout_seconds * 2
        started = time.monotonic()
        self.client.flush(timeout_seconds=timeout)
        with self._errors_lock:
            if self._errors:
                return self._errors[0]
        if time.monotonic() - started >= timeout:
            return "flush timed out"
        return None

    async def run_once(self) -> int:
        """Export one round; returns how many events PostHog accepted."""
        now = datetime.now(UTC)
        lease = timedelta(seconds=self.settings.posthog_lease_seconds)
        async with self.sessionmaker() as session, session.begin():
            cursor = await repository.claim(
                session, name=CURSOR, owner=self.owner, now=now, until=now + lease
            )
            if cursor is None:
                return 0
            events: Sequence[StoredEventRow] = await repository.events_after(
                session,
                seq=cursor.last_seq,
                received_before=now - self.settle,
                limit=self.settings.posthog_batch_size,
            )
        if not events:
            return 0
        payloads = [capture_payload(event, salt=self.settings.pseudonym_salt) for event in events]
        error = await asyncio.to_thread(self._send, payloads)
        async with self.sessionmaker() as session, session.begin():
            if error is not None:
                self.failures += 1
                await repository.record_error(session, name=CURSOR, owner=self.owner, error=error)
                log.warning("posthog_export_failed", error=error, pending=len(events))
                return 0
            await repository.advance(
                session, name=CURSOR, owner=self.owner, seq=events[-1].seq, count=len(events)
            )
        self.exported += len(events)
        return len(events)

    async def _loop(self) -> None:
        interval = self.settings.posthog_interval_seconds
        backoff = interval
        while True:
            failures = self.failures
            try:
                sent = await self.run_once()
            except Exception as exc:  # a DB hiccup must not end the exporter
                log.warning(
                    "posthog_export_round_failed", error_type=type(exc).__name__, error=str(exc)[:300]
                )
                sent, failures = 0, -1
            if self.failures != failures:
                backoff = min(backoff * 2, 300.0)
            else:
                backoff = interval
                if sent == self.settings.posthog_batch_size:
                    continue  # a backlog: keep going
            await asyncio.sleep(backoff)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="posthog-export")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            async with self.sessionmaker() as session, session.begin():
                await repository.release(session, name=CURSOR, owner=self.owner)
        await asyncio.to_thread(self.client.shutdown)
