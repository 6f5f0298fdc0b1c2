"""The analytics client against a local server speaking the ingest API: batching, outages, shutdown."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import pytest_asyncio
from aiohttp import web

from switchboard_shared.analytics_client import INGEST_PATH, AnalyticsClient
from switchboard_shared.contracts.analytics import EventType
from switchboard_shared.http_client import ClientConfig, Downstream
from switchboard_shared.metrics import EVENTS_DROPPED
from switchboard_shared.testing.servers import free_port


class IngestServer:
    """Records batches; can answer 503, delay, refuse large bodies (413) or reject events."""

    def __init__(self) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.status = 200
        self.delay = 0.0
        self.max_events: int | None = None
        self.reject_type: str | None = None
        self.seen: set[str] = set()

    async def ingest(self, request: web.Request) -> web.Response:
        assert request.headers.get("X-Internal-Token") == "tok"
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.status != 200:
            return web.json_response(
                {"error": {"code": "service_unavailable", "message": "down"}}, status=self.status
            )
        events = orjson.loads(await request.read())["events"]
        if self.max_events is not None and len(events) > self.max_events:
            return web.json_response({"error": {"code": "payload_too_large", "message": "big"}}, status=413)
        rejected = [
            {"index": i, "id": e["id"], "error": "type: refused"}
            for i, e in enumerate(events)
            if e["type"] == self.reject_type
        ]
        fresh = [e for e in events if e["id"] not in self.seen and e["type"] != self.reject_type]
        self.seen.update(e["id"] for e in fresh)
        self.batches.append(events)
        accepted = len(fresh)
        duplicates = len(events) - len(rejected) - accepted
        return web.json_response(
            {
                "accepted": accepted,
                "duplicates": duplicates,
                "rejected": rejected,
                "received_at": "2026-01-01T00:00:00Z",
            }
        )

    @property
    def ids(self) -> list[str]:
        return [event["id"] for batch in self.batches for event in batch]


@pytest_asyncio.fixture
async def server() -> AsyncIterator[tuple[IngestServer, str]]:
    fake = IngestServer()
    app = web.Application()
    app.router.add_post(INGEST_PATH, fake.ingest)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield fake, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def downstream(url: str) -> Downstream:
    config = ClientConfig(retries=0, breaker_fail_max=1000, default_headers={"X-Internal-Token": "tok"})
    return Downstream("analytics", url, config)


def emit_many(client: AnalyticsClient, count: int, **kwargs: Any) -> list[str]:
    return [
        client.emit(EventType.MESSAGE_RECEIVED, tenant_id="t1", conversation_id=f"c{i}", **kwargs)
        for i in range(count)
    ]


@pytest.mark.asyncio
async def test_buffers_and_sends_in_batches(server: tuple[IngestServer, str]) -> None:
    fake, url = server
    client = AnalyticsClient(downstream(url), service="chat", batch_size=200, flush_interval=60)
    ids = emit_many(client, 450)
    assert len(client.buffer) == 450 and fake.batches == []
    await client.flush()
    assert [len(batch) for batch in fake.batches] == [200, 200, 50]
    assert fake.ids == ids
    assert client.sent == 450 and client.dropped == 0
    assert fake.batches[0][0]["source"] == "chat" and fake.batches[0][0]["tenant_id"] == "t1"
    await client.close()
    await client.downstream.close()  # type: ignore[union-attr]


@pytest.mark.asyncio
async def test_background_task_flushes_on_interval_and_when_a_batch_fills(
    server: tuple[IngestServer, str],
) -> None:
    fake, url = server
    client = AnalyticsClient(downstream(url), service="chat", batch_size=50, flush_interval=0.05)
    await client.start()
    emit_many(client, 3)
    for _ in range(100):
        if len(fake.ids) == 3:
            break
        await asyncio.sleep(0.02)
    assert len(fake.ids) == 3
    await client.close()
    slow = AnalyticsClient(downstream(url), service="chat", batch_size=50, flush_interval=3600)
    await slow.start()
    emit_many(slow, 50)
    for _ in range(100):
        if len(fake.ids) == 53:
            break
        await asyncio.sleep(0.02)
    assert len(fake.ids) == 53  # a full batch wakes the sender long before the interval
    await slow.close()
    for c in (client, slow):
        await c.downstream.close()  # type: ignore[union-attr]


@pytest.mark.asyncio
async def test_outage_keeps_the_newest_events_and_counts_the_dropped_oldest(
    server: tuple[IngestServer, str],
) -> None:
    fake, url = server
    fake.status = 503
    dropped_before = EVENTS_DROPPED.labels("chat-outage")._value.get()
    client = AnalyticsClient(
        downstream(url), service="chat-outage", max_buffer=100, batch_size=40, flush_interval=60
    )
    ids = emit_many(client, 150)
    assert client.dropped == 50
    await client.flush()  # analytics answers 503: the batch goes back, nothing more is lost
    assert len(client.buffer) == 100 and client.dropped == 50
    emit_many(client, 10)  # still down: ten more of the oldest go
    assert client.dropped == 60
    fake.status = 200
    await client.flush()
    delivered = set(fake.ids)
    assert delivered.isdisjoint(ids[:60]) and set(ids[60:]) <= delivered
    assert len(delivered) == 100
    assert EVENTS_DROPPED.labels("chat-outage")._value.get() - dropped_before == 60
    await client.close()
    await client.downstream.close()  # type: ignore[union-attr]


@pytest.mark.asyncio
async def test_emit_never_waits_for_a_slow_or_dead_analytics(server: tuple[IngestServer, str]) -> None:
    fake, url = server
    fake.delay = 3.0
    client = AnalyticsClient(
        downstream(url), service="chat", batch_size=10, flush_interval=0.01, max_buffer=1000
    )
    await client.start()
    started = time.perf_counter()
    for _ in range(20):
        emit_many(client, 100)
        await asyncio.sleep(0)  # let the sender run: it is stuck in a slow request
    elapsed = time.perf_counter() - started
    # Every emit returned while the first send was still in flight: nothing waited for the network.
    assert fake.batches == []
    assert elapsed < 1.5
    assert len(client.buffer) == 1000 and client.dropped >= 1000 - 10
    await client.close(timeout=0.2)
    dead = AnalyticsClient(downstream(f"http://127.0.0.1:{free_port()}"), service="chat", flush_interval=0.01)
    await dead.start()
    started = time.perf_counter()
    emit_many(dead, 5000)
    assert time.perf_counter() - started < 3.0
    await asyncio.sleep(0.05)
    await dead.close(timeout=0.5)
    assert dead.dropped == 5000 and not dead.buffer
    for c in (client, dead):
        await c.downstream.close()  # type: ignore[union-attr]


@pytest.mark.asyncio
async def test_close_flushes_what_is_buffered(server: tuple[IngestServer, str]) -> None:
    fake, url = server
    client = AnalyticsClient(downstream(url), service="chat", batch_size=100, flush_interval=3600)
    await client.start()
    ids = emit_many(client, 30)
    await client.close()
    assert fake.ids == ids and client.dropped == 0
    await client.downstream.close()  # type: ignore[union-attr]


@pytest.mark.asyncio
async def test_close_during_a_slow_send_still_delivers_the_batch(server: tuple[IngestServer, str]) -> None:
    fake, url = server
    fake.delay = 0.3
    client = AnalyticsClient(downstream(url), service="chat", batch_size=5, flush_interval=0.01)
    await client.start()
    ids = emit_many(client, 5)
    await asyncio.sleep(0.05)  # the sender is mid-request now
    await client.close(timeout=3)
    assert set(ids) <= set(fake.ids)
    await client.downstream.close()  # type: ignore[union-attr]


@pytest.mark.asyncio
async def test_too_large_batches_are_split_and_rejections_counted(server: tuple[IngestServer, str]) -> None:
    fake, url = server
    fake.max_events = 30
    fake.reject_type = EventType.CSAT.value
    client = AnalyticsClient(downstream(url), service="chat", batch_size=200, flush_interval=3600)
    ids = emit_many(client, 100)
    client.emit(EventType.CSAT, tenant_id="t1", properties={"score": 5})
    await client.flush()
    assert set(ids) <= set(fake.ids)
    assert all(len(batch) <= 30 for batch in fake.batches)
    assert client.sent == 100 and client.rejected == 1 and client.dropped == 0
    await client.close()
    await client.downstream.close()  # type: ignore[union-attr]


@pytest.mark.asyncio
async def test_invalid_events_are_counted_never_raised(server: tuple[IngestServer, str]) -> None:
    _, url = server
    client = AnalyticsClient(downstream(url), service="chat")
    event_id = client.emit(EventType.ANSWER_SENT, tenant_id="")
    assert event_id and client.invalid == 1 and client.dropped == 1 and not client.buffer
    disabled = AnalyticsClient(None, service="chat")
    assert disabled.emit(EventType.ANSWER_SENT, tenant_id="t1") and not disabled.buffer
    await client.close()
    await client.downstream.close()  # type: ignore[union-attr]
