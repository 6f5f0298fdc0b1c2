"""A real analytics process fed by the shared client: an outage in the middle, then the reports."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from switchboard_shared.analytics_client import AnalyticsClient
from switchboard_shared.contracts.analytics import EventType
from switchboard_shared.http_client import ClientConfig, Downstream
from switchboard_shared.testing.processes import ServiceProcess

TOKEN = "e2e-internal-token"


@pytest.mark.e2e
@pytest.mark.asyncio
async def test_client_to_process_survives_an_outage_and_reports_the_conversation(tmp_path: Path) -> None:
    env = {
        "ANALYTICS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/analytics.db",
        "SWITCHBOARD_INTERNAL_TOKEN": TOKEN,
        "SWITCHBOARD_ENVIRONMENT": "test",
        "ANALYTICS_PSEUDONYM_SALT": "analytics-test-salt",
        "SWITCHBOARD_DATA_DIR": str(tmp_path),
    }
    process = ServiceProcess("switchboard_analytics", env, name="analytics").start()
    downstream = Downstream(
        "analytics", process.url, ClientConfig(retries=0, default_headers={"X-Internal-Token": TOKEN})
    )
    client = AnalyticsClient(downstream, service="chat", batch_size=50, flush_interval=3600)
    try:
        at = (datetime.now(UTC) - timedelta(days=5)).replace(hour=12, minute=0, second=0, microsecond=0)
        ids = {"tenant_id": "acme", "conversation_id": "conv-1", "end_user_id": "eu-1", "channel": "web"}
        client.emit(EventType.CONVERSATION_STARTED, occurred_at=at, **ids)
        client.emit(EventType.MESSAGE_RECEIVED, occurred_at=at + timedelta(seconds=1), **ids)
        client.emit(
            EventType.ANSWER_SENT,
            occurred_at=at + timedelta(seconds=3),
            properties={
                "message_id": "m-1",
                "latency_ms": {"retrieval": 40.0, "generation": 900.0, "total": 960.0},
                "provider": "extractive",
                "no_answer": False,
                "question": "How do I add a custom domain?",
                "sources": ["doc-domains"],
            },
            **ids,
        )
        await client.flush()
        assert client.sent == 3
        process.stop()
        client.emit(
            EventType.FEEDBACK,
            occurred_at=at + timedelta(minutes=1),
            properties={"rating": "up", "message_id": "m-1", "sources": ["doc-domains"]},
            **ids,
        )
        client.emit(EventType.CSAT, occurred_at=at + timedelta(minutes=2), properties={"score": 5}, **ids)
        await client.flush()  # analytics is down: kept in the buffer
        assert len(client.buffer) == 2 and client.dropped == 0
        process.start()
        await client.close()  # flush on close
        assert client.sent == 5 and client.dropped == 0
        day = at.astimezone(ZoneInfo("Europe/Berlin")).date().isoformat()
        params = {"start": day, "end": day, "tz": "Europe/Berlin"}
        headers = {"X-Internal-Token": TOKEN, "X-Tenant-ID": "acme"}
        async with httpx.AsyncClient(base_url=process.url, headers=headers) as http:
            overview = (await http.get("/internal/v1/analytics/overview", params=params)).json()
            documents = (await http.get("/internal/v1/analytics/documents", params=params)).json()
            exported = await http.get("/internal/v1/analytics/export/conversations.csv", params=params)
        assert overview["volume"]["conversations"] == 1
        assert overview["volume"]["customer_messages"] == 1
        assert overview["resolution"]["resolved_by_bot"] == 1
        assert overview["resolution"]["resolution_rate"] == 1.0
        assert overview["satisfaction"]["csat_average"] == 5.0
        assert overview["satisfaction"]["thumbs_up"] == 1
        assert overview["latency"]["total"]["count"] == 1
        assert overview["providers"]["answers_by_provider"] == {"extractive": 1}
        assert documents["top_cited"][0]["document_id"] == "doc-domains"
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        assert [(row["conversation_id"], row["outcome"]) for row in rows] == [("conv-1", "resolved_by_bot")]
    finally:
        await client.close(timeout=0.5)
        await downstream.close()
        process.stop()
