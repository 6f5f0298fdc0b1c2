"""The handoff queue end to end over real HTTP: start with a Zendesk ticket, list with waiting time,
claim, reply (stored in chat and delivered once on Telegram even when retried), relay, return, resolve."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from integrations_fakes import FakeChat, FakeServer, ServiceFactory, assert_error_shape
from test_telegram import BOT_ID, BOT_TOKEN, SECRET, FakeTelegram
from test_tickets import TRANSCRIPT, FakeZendesk, add_connector, zendesk_config

from switchboard_shared.contracts.chat import Owner

Fake = Callable[[], Awaitable[FakeServer]]


@pytest.mark.asyncio
async def test_handoff_with_operator_reply_and_return(
    fake: Fake, chat: FakeChat, service_factory: ServiceFactory, database_url: str
) -> None:
    telegram = FakeTelegram(await fake())
    zendesk = FakeZendesk(await fake())
    service = await service_factory(
        chat_url=chat.server.url, telegram_api_base=telegram.server.url, database_url=database_url
    )
    headers = service.headers()
    await add_connector(service, zendesk_config(zendesk.server.url))
    binding = await service.client.post(
        "/internal/v1/connectors/channels",
        json={"channel": "telegram", "secrets": {"bot_token": BOT_TOKEN, "secret_token": SECRET}},
        headers=headers,
    )
    assert binding.status_code == 201
    start = {
        "conversation_id": "conv-tg",
        "channel": "telegram",
        "end_user_id": "telegram:123456789",
        "external_key": f"{BOT_ID}:123456789",
        "reason": "Клиент просит оператора",
        "transcript": TRANSCRIPT,
        "profile": {"name": "Анна Петрова", "email": "anna.petrova@example.ru", "locale": "ru"},
    }
    created = await service.client.post("/internal/v1/handoffs", json=start, headers=headers)
    assert created.status_code == 201, created.text
    handoff = created.json()
    assert handoff["status"] == "waiting" and handoff["ticket"]["system"] == "zendesk"
    ticket_body = zendesk.server.calls("POST")[0].json()["ticket"]
    assert "Мой заказ A-1001 не пришёл" in ticket_body["comment"]["body"]
    assert ticket_body["tags"] == ["handoff", "switchboard", "telegram", "web"]
    assert chat.owner_changes[-1].owner == Owner.HUMAN
    # Starting again for the same conversation returns the open handoff.
    again = await service.client.post("/internal/v1/handoffs", json=start, headers=headers)
    assert again.json()["id"] == handoff["id"] and len(zendesk.server.calls("POST")) == 1

    await asyncio.sleep(0.3)
    queue = await service.client.get("/internal/v1/handoffs", headers=headers)
    [item] = queue.json()["items"]
    assert item["waiting_seconds"] >= 0.3
    assert item["transcript"][0]["text"] == "Мой заказ A-1001 не пришёл"
    assert item["profile"]["name"] == "Анна Петрова" and item["external_key"] == f"{BOT_ID}:123456789"
    assert (await service.client.get("/internal/v1/handoffs", headers=service.headers("other"))).json()[
        "total"
    ] == 0

    hid = handoff["id"]
    claimed = await service.client.post(
        f"/internal/v1/handoffs/{hid}/claim", json={"operator_id": "op-olga"}, headers=headers
    )
    assert claimed.json()["status"] == "claimed" and claimed.json()["operator_id"] == "op-olga"
    assert chat.owner_changes[-1].actor == "op-olga"
    stolen = await service.client.post(
        f"/internal/v1/handoffs/{hid}/claim", json={"operator_id": "op-ivan"}, headers=headers
    )
    assert_error_shape(stolen, 409, "conflict")

    reply = {
        "text": "Здравствуйте! Посылку отправили повторно.",
        "operator_id": "op-olga",
        "idempotency_key": "r-1",
    }
    first, second = await asyncio.gather(
        service.client.post(f"/internal/v1/handoffs/{hid}/reply", json=reply, headers=headers),
        service.client.post(f"/internal/v1/handoffs/{hid}/reply", json=reply, headers=headers),
    )
    third = await service.client.post(f"/internal/v1/handoffs/{hid}/reply", json=reply, headers=headers)
    statuses = sorted([first.status_code, second.status_code, third.status_code])
    assert statuses in ([200, 200, 200], [200, 200, 409]), [first.text, second.text, third.text]
    assert len(telegram.sent) == 1, "a retried reply reaches the customer once"
    assert telegram.sent[0]["chat_id"] == "123456789"
    assert telegram.sent[0]["text"] == "Здравствуйте! Посылку отправили повторно."
    assert telegram.sent[0]["parse_mode"] == "HTML"
    assert len(chat.operator_messages) == 1
    assert chat.operator_messages[0][1].idempotency_key == f"operator:{hid}:r-1"
    assert third.json()["delivery"]["duplicate"] is True

    relayed = await service.client.post(
        "/internal/v1/handoffs/relay",
        json={"conversation_id": "conv-tg", "message_id": "m-9", "text": "Спасибо!"},
        headers=headers,
    )
    assert relayed.status_code == 200, relayed.text
    [comment] = zendesk.server.calls("PUT")
    assert comment.path == "/api/v2/tickets/35436.json"
    assert comment.json() == {
        "ticket": {"comment": {"body": "Customer: Спасибо!", "public": True, "author_id": 20978392}}
    }

    returned = await service.client.post(
        f"/internal/v1/handoffs/{hid}/return", json={"operator_id": "op-olga"}, headers=headers
    )
    assert returned.json()["status"] == "returned"
    assert chat.owner_changes[-1].owner == Owner.BOT
    late = await service.client.post(
        f"/internal/v1/handoffs/{hid}/reply", json={**reply, "idempotency_key": "r-2"}, headers=headers
    )
    assert_error_shape(late, 409, "conflict")
    detail = (await service.client.get(f"/internal/v1/handoffs/{hid}", headers=headers)).json()
    assert [line["role"] for line in detail["transcript"]] == ["user", "assistant", "operator", "user"]

    # A new handoff for the same conversation, resolved this time.
    second_handoff = (
        await service.client.post(
            "/internal/v1/handoffs", json={**start, "create_ticket": False}, headers=headers
        )
    ).json()
    assert second_handoff["id"] != hid and second_handoff["ticket"] is None
    resolved = await service.client.post(
        f"/internal/v1/handoffs/{second_handoff['id']}/resolve",
        json={"operator_id": "op-ivan", "reason": "done"},
        headers=headers,
    )
    assert resolved.json()["status"] == "resolved"
    assert chat.status_changes[-1].status == "resolved" and chat.status_changes[-1].actor == "op-ivan"
    history = await service.client.get(
        "/internal/v1/handoffs", params={"status": ["returned", "resolved"]}, headers=headers
    )
    assert history.json()["total"] == 2
    missing = await service.client.post(
        "/internal/v1/handoffs/nope/claim", json={"operator_id": "x"}, headers=headers
    )
    assert_error_shape(missing, 404, "not_found")


@pytest.mark.asyncio
async def test_deliver_endpoint_is_idempotent(
    fake: Fake, chat: FakeChat, service_factory: ServiceFactory
) -> None:
    telegram = FakeTelegram(await fake())
    service = await service_factory(chat_url=chat.server.url, telegram_api_base=telegram.server.url)
    await service.client.post(
        "/internal/v1/connectors/channels",
        json={"channel": "telegram", "secrets": {"bot_token": BOT_TOKEN, "secret_token": SECRET}},
        headers=service.headers(),
    )
    body = {
        "channel": "telegram",
        "external_key": f"{BOT_ID}:42",
        "text": "Your refund is on its way.",
        "idempotency_key": "d-1",
    }
    first = await service.client.post("/internal/v1/deliver", json=body, headers=service.headers())
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "sent" and first.json()["duplicate"] is False
    second = await service.client.post("/internal/v1/deliver", json=body, headers=service.headers())
    assert (
        second.json()["duplicate"] is True
        and second.json()["provider_message_ids"] == first.json()["provider_message_ids"]
    )
    assert len(telegram.sent) == 1
    foreign = await service.client.post(
        "/internal/v1/deliver", json={**body, "idempotency_key": "d-2"}, headers=service.headers("other")
    )
    assert_error_shape(foreign, 404, "not_found")
    malformed = await service.client.post(
        "/internal/v1/deliver", json={**body, "external_key": "42"}, headers=service.headers()
    )
    assert_error_shape(malformed, 400, "bad_request")
    telegram.failures = [
        (403, {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"})
    ]
    blocked = await service.client.post(
        "/internal/v1/deliver", json={**body, "idempotency_key": "d-3"}, headers=service.headers()
    )
    error = assert_error_shape(blocked, 502, "upstream_error")
    assert "blocked" in error["message"]


@pytest.mark.asyncio
async def test_web_handoff_reply_is_stored_once(chat: FakeChat, service_factory: ServiceFactory) -> None:
    service = await service_factory(chat_url=chat.server.url)
    headers = service.headers()
    start = {
        "conversation_id": "conv-web",
        "channel": "web",
        "end_user_id": "u-7",
        "reason": "asked",
        "notify_chat": False,
    }
    first_start, second_start = await asyncio.gather(
        service.client.post("/internal/v1/handoffs", json=start, headers=headers),
        service.client.post("/internal/v1/handoffs", json=start, headers=headers),
    )
    assert first_start.json()["id"] == second_start.json()["id"], "one open handoff per conversation"
    assert first_start.json()["ticket"] is None, "no ticketing connector: the handoff opens without one"
    assert chat.owner_changes == [], "chat opened it itself (notify_chat false)"
    hid = first_start.json()["id"]
    reply = {"text": "Hello, I'm Olga.", "operator_id": "op-olga", "idempotency_key": "w-1"}
    one = await service.client.post(f"/internal/v1/handoffs/{hid}/reply", json=reply, headers=headers)
    two = await service.client.post(f"/internal/v1/handoffs/{hid}/reply", json=reply, headers=headers)
    assert one.json()["delivery"]["status"] == "stored" and one.json()["delivery"]["duplicate"] is False
    assert two.json()["delivery"]["duplicate"] is True
    assert one.json()["message_id"] == f"op-operator:{hid}:w-1"
    detail = (await service.client.get(f"/internal/v1/handoffs/{hid}", headers=headers)).json()
    assert [line["role"] for line in detail["transcript"]] == ["operator"]
    assert detail["status"] == "claimed" and detail["operator_id"] == "op-olga"
    assert len(chat.operator_messages) == 1


@pytest.mark.asyncio
async def test_channel_breaker_opens_and_then_fails_fast(
    fake: Fake, chat: FakeChat, service_factory: ServiceFactory
) -> None:
    telegram = FakeTelegram(await fake())
    telegram.failures = [(500, {"ok": False, "error_code": 500, "description": "Internal Server Error"})] * 10
    service = await service_factory(
        chat_url=chat.server.url,
        telegram_api_base=telegram.server.url,
        breaker_fail_max=2,
        breaker_reset_seconds=30,
    )
    await service.client.post(
        "/internal/v1/connectors/channels",
        json={"channel": "telegram", "secrets": {"bot_token": BOT_TOKEN, "secret_token": SECRET}},
        headers=service.headers(),
    )
    body = {"channel": "telegram", "external_key": f"{BOT_ID}:42", "text": "hello", "idempotency_key": "b-1"}
    first = await service.client.post("/internal/v1/deliver", json=body, headers=service.headers())
    assert_error_shape(first, 503, "upstream_unavailable")
    sends = telegram.server.calls("POST", "/bot")
    assert len(sends) == 2, "two 500s open the breaker; the third try is refused locally"
    started = asyncio.get_running_loop().time()
    second = await service.client.post(
        "/internal/v1/deliver", json={**body, "idempotency_key": "b-2"}, headers=service.headers()
    )
    error = assert_error_shape(second, 503, "upstream_unavailable")
    assert "circuit open" in error["message"]
    assert asyncio.get_running_loop().time() - started < 0.5
    assert len(telegram.server.calls("POST", "/bot")) == 2
    metrics = (await service.client.get("/metrics")).text
    assert 'switchboard_integrations_channel_sends_total{channel="telegram",outcome="failed"}' in metrics
    ready = (await service.client.get("/readyz")).json()
    assert ready["breakers"]["telegram"] == "open"
