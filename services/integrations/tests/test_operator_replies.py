"""An operator's reply when Telegram cannot take it: stored once with a delivery state, retried in the
background with backoff until it goes through, retried on demand under the same key without a second copy,
shown with its state in the handoff; and ``operator_replied`` left to chat (counted once)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from integrations_fakes import FakeChat, FakeServer, Recorded, Service, ServiceFactory
from test_telegram import BOT_ID, BOT_TOKEN, SECRET, FakeTelegram

Fake = Callable[[], Awaitable[FakeServer]]


async def start_handoff(service: Service) -> str:
    binding = await service.client.post(
        "/internal/v1/connectors/channels",
        json={"channel": "telegram", "secrets": {"bot_token": BOT_TOKEN, "secret_token": SECRET}},
        headers=service.headers(),
    )
    assert binding.status_code == 201, binding.text
    created = await service.client.post(
        "/internal/v1/handoffs",
        json={
            "conversation_id": "conv-op",
            "channel": "telegram",
            "end_user_id": "telegram:123456789",
            "external_key": f"{BOT_ID}:123456789",
            "reason": "asked for a person",
            "create_ticket": False,
        },
        headers=service.headers(),
    )
    assert created.status_code == 201, created.text
    hid: str = created.json()["id"]
    return hid


async def detail(service: Service, hid: str) -> dict[str, Any]:
    response = await service.client.get(f"/internal/v1/handoffs/{hid}", headers=service.headers())
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def wait_for_status(service: Service, hid: str, status: str, timeout: float = 15.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        body = await detail(service, hid)
        if body["replies"] and body["replies"][0]["status"] == status:
            return body
        assert asyncio.get_running_loop().time() < deadline, body["replies"]
        await asyncio.sleep(0.1)


@pytest.mark.asyncio
async def test_reply_while_telegram_is_down_is_stored_once_and_delivered_later(
    fake: Fake,
    chat: FakeChat,
    service_factory: ServiceFactory,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    telegram = FakeTelegram(await fake())
    analytics = await fake()

    @analytics.route("POST /internal/v1/events")
    async def _events(_: Recorded) -> web.StreamResponse:
        return web.json_response({"accepted": 1, "duplicates": 0})

    service = await service_factory(
        chat_url=chat.server.url,
        telegram_api_base=telegram.server.url,
        analytics_url=analytics.url,
        database_url=database_url,
        http_retries=0,
        channel_send_attempts=2,
        delivery_retry_seconds=0.1,
        delivery_retry_initial=0.3,
        delivery_retry_max=1.0,
    )
    hid = await start_handoff(service)
    await telegram.server.stop()  # api.telegram.org unreachable

    reply = {
        "text": "Здравствуйте! Посылку отправили повторно.",
        "operator_id": "op-olga",
        "idempotency_key": "k-1",
    }
    first = await service.client.post(
        f"/internal/v1/handoffs/{hid}/reply", json=reply, headers=service.headers()
    )
    assert first.status_code == 200, first.text
    delivery = first.json()["delivery"]
    assert delivery["status"] == "pending" and delivery["next_attempt_at"] is not None
    assert "unavailable" in delivery["last_error"]
    # structlog prints to stdout until a test in this process configures logging (the migration tests
    # do), then it goes through the standard library's records: read both.
    lines = capsys.readouterr().out.splitlines() + [str(record.msg) for record in caplog.records]
    logged = [line for line in lines if "channel_send_retry" in line]
    assert logged and "Cannot connect to host" in logged[0], "the log says why the send failed"
    assert f"account_id={BOT_ID}" in logged[0] or f"'account_id': '{BOT_ID}'" in logged[0], (
        "the bot id is not masked as a phone number"
    )
    # The operator presses Send again (same key): no second copy anywhere.
    again = await service.client.post(
        f"/internal/v1/handoffs/{hid}/reply", json=reply, headers=service.headers()
    )
    assert again.status_code == 200, again.text
    assert len(chat.operator_messages) == 1
    shown = await detail(service, hid)
    [state] = shown["replies"]
    assert (
        state["status"] == "pending" and state["text"] == reply["text"] and state["idempotency_key"] == "k-1"
    )
    assert [line["role"] for line in shown["transcript"]] == ["operator"]

    await telegram.server.start()  # back, on the same address
    shown = await wait_for_status(service, hid, "sent")
    assert [m["text"] for m in telegram.sent] == [reply["text"]], "delivered exactly once"
    assert shown["replies"][0]["last_error"] is None and shown["replies"][0]["next_attempt_at"] is None
    third = await service.client.post(
        f"/internal/v1/handoffs/{hid}/reply", json=reply, headers=service.headers()
    )
    assert third.json()["delivery"]["duplicate"] is True and len(telegram.sent) == 1

    await asyncio.sleep(1.5)  # the analytics client's flush interval
    sent_events = [event for call in analytics.calls("POST") for event in call.json()["events"]]
    assert all(event["type"] != "operator_replied" for event in sent_events), "chat counts it, once"


@pytest.mark.asyncio
async def test_a_refused_reply_is_failed_and_retried_on_demand(
    fake: Fake, chat: FakeChat, service_factory: ServiceFactory
) -> None:
    telegram = FakeTelegram(await fake())
    service = await service_factory(
        chat_url=chat.server.url, telegram_api_base=telegram.server.url, delivery_retry_seconds=0.1
    )
    hid = await start_handoff(service)
    telegram.failures = [
        (403, {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"})
    ]
    reply = {"text": "We refunded you.", "operator_id": "op-ivan", "idempotency_key": "k-2"}
    first = await service.client.post(
        f"/internal/v1/handoffs/{hid}/reply", json=reply, headers=service.headers()
    )
    assert first.status_code == 200, first.text
    assert first.json()["delivery"]["status"] == "failed"
    assert "blocked" in first.json()["delivery"]["last_error"]
    await asyncio.sleep(0.5)
    [state] = (await detail(service, hid))["replies"]
    assert state["status"] == "failed" and telegram.sent == [telegram.sent[0]], (
        "no background retry of a refusal"
    )

    # The customer unblocked the bot: the operator presses Retry; the stored words go, nothing retyped.
    retried = await service.client.post(
        f"/internal/v1/handoffs/{hid}/replies/{state['id']}/retry", json={}, headers=service.headers()
    )
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "sent" and retried.json()["attempts"] == 2
    assert [m["text"] for m in telegram.delivered] == ["We refunded you."]
    assert len(chat.operator_messages) == 1
    missing = await service.client.post(
        f"/internal/v1/handoffs/{hid}/replies/nope/retry", json={}, headers=service.headers()
    )
    assert missing.status_code == 404


@pytest.mark.asyncio
async def test_the_customers_wait_runs_until_a_person_answers_not_until_the_claim(
    fake: Fake, chat: FakeChat, service_factory: ServiceFactory
) -> None:
    telegram = FakeTelegram(await fake())
    service = await service_factory(chat_url=chat.server.url, telegram_api_base=telegram.server.url)
    hid = await start_handoff(service)
    claimed = await service.client.post(
        f"/internal/v1/handoffs/{hid}/claim", json={"operator_id": "op-olga"}, headers=service.headers()
    )
    assert claimed.status_code == 200, claimed.text
    await asyncio.sleep(0.5)
    waiting = await detail(service, hid)
    assert waiting["answered_at"] is None
    assert waiting["waiting_seconds"] >= 0.5, "claiming the handoff does not end (or restart) the wait"
    reply = {"text": "Hello!", "operator_id": "op-olga", "idempotency_key": "k-w"}
    await service.client.post(f"/internal/v1/handoffs/{hid}/reply", json=reply, headers=service.headers())
    answered = await detail(service, hid)
    assert answered["answered_at"] is not None and answered["waiting_seconds"] >= 0.5
    await asyncio.sleep(0.3)
    assert (await detail(service, hid))["waiting_seconds"] == answered["waiting_seconds"], (
        "it stops at the answer"
    )
