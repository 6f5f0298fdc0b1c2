"""PostHog export through the official client against a local server speaking PostHog's ``/batch/`` API."""

from __future__ import annotations

import asyncio
import gzip
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import pytest_asyncio
from aiohttp import web
from sqlalchemy import func, select

from switchboard_analytics.events.models import StoredEventRow
from switchboard_analytics.posthog_export.models import ExportCursorRow
from switchboard_analytics.posthog_export.service import EVENT_UUID_NAMESPACE
from switchboard_shared.redaction import tenant_pseudonym
from switchboard_shared.testing.servers import free_port

API_KEY = "phc_test_project_key"
SALT = "test-pseudonym-salt"
Factory = Callable[..., dict[str, Any]]


class FakePostHog:
    """Speaks PostHog's legacy capture endpoint: POST /batch/ {api_key, batch: [...], sent_at}."""

    def __init__(self) -> None:
        self.batches: list[dict[str, Any]] = []
        self.requests: list[str] = []
        self.failing = False

    async def batch(self, request: web.Request) -> web.Response:
        self.requests.append(request.path)
        raw = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            raw = gzip.decompress(raw)
        if self.failing:
            return web.json_response({"type": "server_error"}, status=503)
        payload = orjson.loads(raw)
        if payload.get("api_key") != API_KEY or not isinstance(payload.get("batch"), list):
            return web.json_response({"type": "validation_error"}, status=400)
        self.batches.append(payload)
        return web.json_response({"status": "Ok"})

    async def other(self, request: web.Request) -> web.Response:
        self.requests.append(request.path)
        return web.json_response({"detail": "not found"}, status=404)

    @property
    def events(self) -> list[dict[str, Any]]:
        return [event for batch in self.batches for event in batch["batch"]]


@pytest_asyncio.fixture
async def posthog_server() -> AsyncIterator[tuple[FakePostHog, str]]:
    fake = FakePostHog()
    app = web.Application()
    app.router.add_post("/batch/", fake.batch)
    app.router.add_route("*", "/{tail:.*}", fake.other)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield fake, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def posthog_settings(host: str, **overrides: Any) -> dict[str, Any]:
    return {
        "posthog_api_key": API_KEY,
        "posthog_host": host,
        "posthog_settle_seconds": 0.0,
        "posthog_timeout_seconds": 3.0,
        "pseudonym_salt": SALT,
        **overrides,
    }


@pytest.mark.asyncio
async def test_outage_loses_nothing_and_payloads_are_redacted_and_pseudonymised(
    start_service: Callable[..., Any], posthog_server: tuple[FakePostHog, str], make_event: Factory
) -> None:
    fake, host = posthog_server
    at = datetime.now(UTC) - timedelta(minutes=5)
    events = [
        make_event(
            "answer_sent",
            at=at,
            conversation_id="c1",
            end_user_id="user-42",
            properties={
                "no_answer": True,
                "question": "My card 4111 1111 1111 1111 and mail jane@example.com, call +1 415 555 0100",
                "api_token": "sk-live-123",
                "provider": "extractive",
                "kb_ids": ["kb-shop"],
            },
        ),
        make_event("conversation_started", at=at, conversation_id="c2"),
    ]
    # the interval is long: the test drives export rounds itself
    async with start_service(**posthog_settings(host, posthog_interval_seconds=3600)) as service:
        ingest = await service.client.post("/internal/v1/events", json={"events": events})
        assert ingest.json()["accepted"] == 2
        exporter = service.state["runtime"].posthog
        fake.failing = True
        assert await exporter.run_once() == 0
        assert fake.requests.count("/batch/") >= 1
        async with service.platform.sessionmaker() as session:
            cursor = await session.get(ExportCursorRow, "posthog")
            assert cursor is not None and cursor.last_seq == 0 and cursor.last_error
            assert await session.scalar(select(func.count()).select_from(StoredEventRow)) == 2
        fake.failing = False
        assert await exporter.run_once() == 2
        assert await exporter.run_once() == 0  # nothing new: nothing re-sent
        async with service.platform.sessionmaker() as session:
            cursor = await session.get(ExportCursorRow, "posthog")
            assert cursor is not None and cursor.exported == 2 and cursor.last_error is None
    assert fake.requests and all(path == "/batch/" for path in fake.requests)
    sent = {event["event"]: event for event in fake.events}
    assert set(sent) == {"answer_sent", "conversation_started"}
    answer = sent["answer_sent"]
    assert answer["distinct_id"] == tenant_pseudonym("t1", "user-42", salt=SALT)
    assert "user-42" not in orjson.dumps(fake.batches).decode()
    question = answer["properties"]["question"]
    assert "[card]" in question and "[email]" in question and "[phone]" in question
    assert "4111" not in question and "jane@" not in question
    assert answer["properties"]["api_token"] == "[secret]"
    assert answer["properties"]["tenant_id"] == "t1"
    assert answer["properties"]["$process_person_profile"] is True
    assert answer["properties"]["content_gap"] == "refused" and answer["properties"]["kb_ids"] == ["kb-shop"]
    assert answer["uuid"] == str(uuid.uuid5(EVENT_UUID_NAMESPACE, events[0]["id"]))
    assert datetime.fromisoformat(answer["timestamp"]) == at
    assert sent["conversation_started"]["distinct_id"] == "tenant:t1"
    assert sent["conversation_started"]["properties"]["$process_person_profile"] is False
    assert "content_gap" not in sent["conversation_started"]["properties"]


@pytest.mark.asyncio
async def test_background_export_runs_without_blocking_ingest(
    start_service: Callable[..., Any], posthog_server: tuple[FakePostHog, str], make_event: Factory
) -> None:
    fake, host = posthog_server
    at = datetime.now(UTC) - timedelta(minutes=1)
    settings = posthog_settings(host, posthog_interval_seconds=0.1, posthog_batch_size=50)
    async with start_service(**settings) as service:
        for _ in range(3):
            batch = [make_event("message_received", at=at) for _ in range(40)]
            started = asyncio.get_running_loop().time()
            response = await service.client.post("/internal/v1/events", json={"events": batch})
            assert response.json()["accepted"] == 40
            assert asyncio.get_running_loop().time() - started < 2.0
        for _ in range(100):
            if len(fake.events) >= 120:
                break
            await asyncio.sleep(0.1)
    assert len({event["uuid"] for event in fake.events}) == 120
