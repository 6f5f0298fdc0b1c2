"""Batch ingestion: per-event validation, idempotency, partial success, limits, shared error shape."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from switchboard_analytics.events.models import RollupRow, StoredEventRow
from switchboard_shared.contracts.analytics import MAX_BATCH_EVENTS

Factory = Callable[..., dict[str, Any]]
RECENT = datetime.now(UTC) - timedelta(hours=2)


@pytest.mark.asyncio
async def test_partial_batch_stores_valid_events_and_reports_each_rejection(
    client: httpx.AsyncClient, make_event: Factory
) -> None:
    good = make_event("conversation_started", at=RECENT, conversation_id="c1", end_user_id="u1")
    naive = {**make_event("message_received", at=RECENT), "occurred_at": "2026-01-01T10:00:00"}
    garbled = {**make_event("message_received", at=RECENT), "occurred_at": "yesterday"}
    future = make_event("message_received", at=datetime.now(UTC) + timedelta(days=2))
    unknown = {**make_event("answer_sent", at=RECENT), "type": "teleported"}
    extra = {**make_event("csat", at=RECENT), "surprise": 1}
    response = await client.post(
        "/internal/v1/events", json={"events": [good, naive, garbled, future, unknown, extra, "text"]}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 1
    assert body["duplicates"] == 0
    rejected = {item["index"]: item for item in body["rejected"]}
    assert sorted(rejected) == [1, 2, 3, 4, 5, 6]
    assert "occurred_at" in rejected[1]["error"] and "timezone" in rejected[1]["error"].lower()
    assert "occurred_at" in rejected[2]["error"]
    assert rejected[3]["error"] == "occurred_at: is in the future"
    assert rejected[4]["error"].startswith("type:") and rejected[4]["id"] == unknown["id"]
    assert "surprise" in rejected[5]["error"]
    assert rejected[6]["id"] is None


@pytest.mark.asyncio
async def test_resent_events_are_counted_as_duplicates_and_not_double_counted(
    client: httpx.AsyncClient, make_event: Factory
) -> None:
    events = [
        make_event("answer_sent", at=RECENT, conversation_id="c1", properties={"provider": "extractive"})
        for _ in range(3)
    ]
    first = (await client.post("/internal/v1/events", json={"events": events})).json()
    again = (await client.post("/internal/v1/events", json={"events": [*events, events[0]]})).json()
    assert (first["accepted"], first["duplicates"]) == (3, 0)
    assert (again["accepted"], again["duplicates"]) == (0, 4)
    day = RECENT.date().isoformat()
    report = (
        await client.get(
            "/internal/v1/analytics/providers",
            params={"start": day, "end": day},
            headers={"X-Tenant-ID": "t1"},
        )
    ).json()
    assert report["answers_by_provider"] == {"extractive": 3}


@pytest.mark.asyncio
async def test_events_must_belong_to_the_calling_tenant_when_one_is_named(
    client: httpx.AsyncClient, make_event: Factory
) -> None:
    events = [
        make_event("message_received", at=RECENT, tenant_id="t1"),
        make_event("message_received", at=RECENT, tenant_id="t2"),
    ]
    body = (
        await client.post("/internal/v1/events", json={"events": events}, headers={"X-Tenant-ID": "t1"})
    ).json()
    assert body["accepted"] == 1
    assert body["rejected"][0]["index"] == 1 and "tenant_id" in body["rejected"][0]["error"]


@pytest.mark.asyncio
async def test_oversize_batches_are_refused_in_the_shared_error_shape(
    client: httpx.AsyncClient, make_event: Factory
) -> None:
    too_many = [make_event("message_received", at=RECENT) for _ in range(MAX_BATCH_EVENTS + 1)]
    response = await client.post("/internal/v1/events", json={"events": too_many})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    huge = {"events": [make_event("message_received", at=RECENT, properties={"blob": "x" * 5_000_000})]}
    response = await client.post("/internal/v1/events", json=huge)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    fat = make_event("message_received", at=RECENT, properties={"blob": "x" * 20_000})
    body = (await client.post("/internal/v1/events", json={"events": [fat]})).json()
    assert body["accepted"] == 0 and "properties" in body["rejected"][0]["error"]


@pytest.mark.asyncio
async def test_ingest_needs_the_internal_token(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/internal/v1/events", json={"events": []}, headers={"X-Internal-Token": "no"}
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


@pytest.mark.asyncio
async def test_rollups_are_maintained_at_every_grain(service: Any, make_event: Factory) -> None:
    events = [make_event("message_received", at=RECENT + timedelta(minutes=i)) for i in range(5)]
    await service.client.post("/internal/v1/events", json={"events": events})
    async with service.platform.sessionmaker() as session:
        stored = await session.scalar(select(func.count()).select_from(StoredEventRow))
        rows = (
            await session.execute(
                select(RollupRow.grain, func.sum(RollupRow.count))
                .where(RollupRow.metric == "event", RollupRow.key == "message_received")
                .group_by(RollupRow.grain)
            )
        ).all()
    assert stored == 5
    assert dict(rows) == {"h": 5, "d": 5, "m": 5}


@pytest.mark.asyncio
async def test_hostile_values_are_rejected_or_normalised_never_500(
    client: httpx.AsyncClient, make_event: Factory
) -> None:
    nan = make_event("answer_sent", at=RECENT, properties={"latency_ms": {"total": float("nan")}})
    nul_id = make_event("message_received", at=RECENT, conversation_id="c\x00")
    nul_text = make_event("answer_sent", at=RECENT, properties={"question": "a\x00b"})
    long_id = make_event("message_received", at=RECENT, conversation_id="c" * 200)
    raw = json.dumps({"events": [nan, nul_id, nul_text, long_id]}).encode()  # NaN literal allowed here
    assert b"NaN" in raw
    response = await client.post(
        "/internal/v1/events", content=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 2  # a NUL in a customer's text is cleaned, never the reason to lose the event
    errors = {item["index"]: item["error"] for item in body["rejected"]}
    assert errors == {
        1: "conversation_id: NUL characters are not allowed",
        3: "conversation_id: longer than 128 characters",
    }
    response = await client.post(
        "/internal/v1/events", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422 and response.json()["error"]["code"] == "validation_error"
