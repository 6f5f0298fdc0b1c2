"""The analytics client every service uses: buffered, batched, flushed on an interval and at shutdown.

``emit`` never blocks and never raises: when the buffer is full the oldest event is dropped and counted,
so an analytics outage cannot slow or break a chat turn. Sending happens in a background task; a batch
that could not be delivered goes back to the front of the buffer (event ids make re-sending safe).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import deque
from datetime import UTC, datetime
from typing import Any

import structlog
from pydantic import ValidationError

from switchboard_shared.contracts.analytics import MAX_BATCH_EVENTS, Event, EventType
from switchboard_shared.errors import AppError
from switchboard_shared.http_client import Downstream
from switchboard_shared.metrics import EVENTS_DROPPED

log = structlog.get_logger(__name__)
INGEST_PATH = "/internal/v1/events"


class AnalyticsClient:
    def __init__(
        self,
        downstream: Downstream | None,
        *,
        service: str,
        max_buffer: int = 10_000,
        batch_size: int = 200,
        flush_interval: float = 1.0,
        request_timeout: float = 10.0,
    ) -> None:
        self.downstream = downstream
        self.service = service
        self.buffer: deque[Event] = deque()
        self.max_buffer = max(1, max_buffer)
        self.batch_size = max(1, min(batch_size, MAX_BATCH_EVENTS))
        self.flush_interval = flush_interval
        self.request_timeout = request_timeout
        self.dropped = 0
        self.sent = 0
        self.duplicates = 0
        self.rejected = 0
        self.invalid = 0
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._flush_lock = asyncio.Lock()

    def emit(
        self,
        type: EventType,
        *,
        tenant_id: str,
        conversation_id: str | None = None,
        end_user_id: str | None = None,
        channel: str | None = None,
        properties: dict[str, Any] | None = None,
        occurred_at: datetime | None = None,
        event_id: str | None = None,
    ) -> str:
        """Buffer one event and return its id; an event that fails validation is counted and logged."""
        new_id = event_id or uuid.uuid4().hex
        if self.downstream is None:
            return new_id
        try:
            event = Event(
                id=new_id,
                type=type,
                tenant_id=tenant_id,
                occurred_at=occurred_at or datetime.now(UTC),
                source=self.service,
                conversation_id=conversation_id,
                end_user_id=end_user_id,
                channel=channel,
                properties=properties or {},
            )
        except ValidationError as exc:
            self.invalid += 1
            self._drop(1)
            log.warning("analytics_event_invalid", event_type=str(type), errors=exc.error_count())
            return new_id
        if len(self.buffer) >= self.max_buffer:
            self.buffer.popleft()
            self._drop(1)
        self.buffer.append(event)
        if len(self.buffer) >= self.batch_size:
            self._wake.set()
        return event.id

    def _drop(self, count: int) -> None:
        self.dropped += count
        EVENTS_DROPPED.labels(self.service).inc(count)

    async def start(self) -> None:
        if self.downstream is not None and self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"analytics-flush-{self.service}")

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.flush_interval)
            self._wake.clear()
            try:
                await self.flush()
            except Exception as exc:  # the sender must outlive any single bad round
                log.warning("analytics_flush_failed", error_type=type(exc).__name__, error=str(exc)[:200])

    async def flush(self) -> None:
        """Send what is buffered; on failure keep it (bounded) for the next try."""
        if self.downstream is None:
            return
        async with self._flush_lock:
            while self.buffer:
                batch = [self.buffer.popleft() for _ in range(min(self.batch_size, len(self.buffer)))]
                try:
                    delivered = await self._send(batch)
                except BaseException:
                    # Cancelled mid-request (shutdown): the batch goes back so close() can still send it.
                    self._requeue(batch)
                    raise
                if not delivered:
                    return

    async def _send(self, batch: list[Event]) -> bool:
        """Deliver one batch (splitting it when the body is too large); False when analytics is down."""
        assert self.downstream is not None
        payload = {"events": [event.model_dump(mode="json") for event in batch]}
        try:
            response = await self.downstream.request(
                "POST", INGEST_PATH, json=payload, idempotent=True, timeout=self.request_timeout
            )
        except AppError as exc:
            self._requeue(batch)
            log.warning("analytics_unavailable", error=exc.message, buffered=len(self.buffer))
            return False
        if response.status >= 500 or response.status == 429:
            self._requeue(batch)
            log.warning("analytics_unavailable", status=response.status, buffered=len(self.buffer))
            return False
        if response.status == 413 and len(batch) > 1:
            middle = len(batch) // 2
            if not await self._send(batch[:middle]):
                self._requeue(batch[middle:])
                return False
            return await self._send(batch[middle:])
        if response.status >= 400:
            self._drop(len(batch))
            log.warning("analytics_rejected_batch", status=response.status, events=len(batch))
            return True
        self._count_result(response.json(), len(batch))
        return True

    def _count_result(self, result: Any, size: int) -> None:
        if not isinstance(result, dict):
            self.sent += size
            return
        accepted = int(result.get("accepted", size))
        duplicates = int(result.get("duplicates", 0))
        rejected = result.get("rejected") or []
        self.sent += accepted
        self.duplicates += duplicates
        if rejected:
            self.rejected += len(rejected)
            first = rejected[0] if isinstance(rejected[0], dict) else {}
            log.warning("analytics_events_rejected", count=len(rejected), first_error=first.get("error"))

    def _requeue(self, batch: list[Event]) -> None:
        # Event ids make re-sending safe; keep the newest when the buffer overflows.
        self.buffer.extendleft(reversed(batch))
        overflow = len(self.buffer) - self.max_buffer
        for _ in range(max(0, overflow)):
            self.buffer.popleft()
        if overflow > 0:
            self._drop(overflow)

    async def close(self, *, timeout: float = 5.0) -> None:
        """Stop the sender, try to deliver what is buffered within ``timeout``, count the rest as dropped."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.flush(), timeout=timeout)
        if self.buffer:
            self._drop(len(self.buffer))
            log.warning("analytics_events_lost_at_shutdown", count=len(self.buffer))
            self.buffer.clear()
