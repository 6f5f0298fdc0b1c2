"""CSV export of events and conversations for a range."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

Factory = Callable[..., dict[str, Any]]
BASE = (datetime.now(UTC) - timedelta(days=20)).replace(hour=10, minute=0, second=0, microsecond=0)


@pytest.mark.asyncio
async def test_events_and_conversations_export_as_csv(client: httpx.AsyncClient, make_event: Factory) -> None:
    events = []
    for i in range(2500):  # more than one page
        events.append(
            make_event(
                "message_received",
                at=BASE + timedelta(seconds=i),
                conversation_id=f"c{i % 3}",
                end_user_id=f"u{i % 3}",
                properties={"text_chars": i, "note": 'comma, "quote"'},
            )
        )
    events.append(make_event("answer_sent", at=BASE, conversation_id="c0", properties={"provider": "p"}))
    events.append(make_event("answer_sent", at=BASE, conversation_id="c1", properties={"provider": "p"}))
    events.append(make_event("handoff", at=BASE, conversation_id="c1", properties={"reason": "rule"}))
    events.append(make_event("message_received", at=BASE - timedelta(days=3), conversation_id="old"))
    for start in range(0, len(events), 1000):
        response = await client.post("/internal/v1/events", json={"events": events[start : start + 1000]})
        assert response.json()["accepted"] == len(events[start : start + 1000])
    params = {"start": BASE.date().isoformat(), "end": BASE.date().isoformat()}
    headers = {"X-Tenant-ID": "t1"}
    response = await client.get("/internal/v1/analytics/export/events.csv", params=params, headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 2503
    times = [row["occurred_at"] for row in rows]
    assert times == sorted(times)
    assert len({row["event_id"] for row in rows}) == 2503
    sample = next(row for row in rows if row["type"] == "message_received")
    assert orjson.loads(sample["properties"])["note"] == 'comma, "quote"'
    response = await client.get(
        "/internal/v1/analytics/export/conversations.csv", params=params, headers=headers
    )
    conversations = {row["conversation_id"]: row for row in csv.DictReader(io.StringIO(response.text))}
    assert set(conversations) == {"c0", "c1", "c2"}
    assert conversations["c0"]["outcome"] == "resolved_by_bot"
    assert conversations["c1"]["outcome"] == "handoff"
    assert conversations["c1"]["handoff_reason"] == "rule"
    assert conversations["c2"]["outcome"] == "not_answered"
    assert int(conversations["c0"]["customer_messages"]) == 834
