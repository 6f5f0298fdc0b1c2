"""Telegram round trips against a local stand-in for api.telegram.org and for chat: secret-token check,
duplicates dropped, /start, edits and stickers answered politely, MarkdownV2 escaping, long answers split,
429 retry_after honoured and send failures retried and counted."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from integrations_fakes import FakeChat, FakeServer, Recorded, Service, ServiceFactory, assert_error_shape

from switchboard_integrations.channels.base import split_text
from switchboard_integrations.channels.telegram import escape_markdown_v2

Fake = Callable[[], Awaitable[FakeServer]]
BOT_TOKEN = "7000000001:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1"
BOT_ID = "7000000001"
SECRET = "s3cr3t-Token_for-webhook"
WEBHOOK = f"/internal/v1/channels/telegram/{BOT_ID}"


def update(
    update_id: int, text: str | None = "Where is my order A-1001?", **message_extra: Any
) -> dict[str, Any]:
    """The shape of an Update from https://core.telegram.org/bots/api#update (a private chat message)."""
    message: dict[str, Any] = {
        "message_id": 100 + update_id,
        "from": {
            "id": 123456789,
            "is_bot": False,
            "first_name": "Иван",
            "last_name": "Иванов",
            "username": "ivan",
            "language_code": "ru",
        },
        "chat": {
            "id": 123456789,
            "first_name": "Иван",
            "last_name": "Иванов",
            "username": "ivan",
            "type": "private",
        },
        "date": 1732480000,
        **message_extra,
    }
    if text is not None:
        message["text"] = text
    return {"update_id": update_id, "message": message}


class FakeTelegram:
    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.next_id = 500
        self.failures: list[tuple[int, dict[str, Any]]] = []
        server.routes[f"POST /bot{BOT_TOKEN}/sendMessage"] = self._send

    async def _send(self, request: Recorded) -> web.StreamResponse:
        if self.failures:
            status, body = self.failures.pop(0)
            return web.json_response(body, status=status)
        body = request.json()
        self.next_id += 1
        return web.json_response(
            {
                "ok": True,
                "result": {
                    "message_id": self.next_id,
                    "chat": {"id": body["chat_id"], "type": "private"},
                    "date": 1732480001,
                    "text": body["text"],
                },
            }
        )

    @property
    def sent(self) -> list[dict[str, Any]]:
        return [r.json() for r in self.server.calls("POST", "/bot")]


async def setup(
    fake: Fake, chat: FakeChat, service_factory: ServiceFactory, **overrides: Any
) -> tuple[Service, FakeTelegram]:
    telegram = FakeTelegram(await fake())
    service = await service_factory(
        telegram_api_base=telegram.server.url, chat_url=chat.server.url, **overrides
    )
    binding = await service.client.post(
        "/internal/v1/connectors/channels",
        json={"channel": "telegram", "secrets": {"bot_token": BOT_TOKEN, "secret_token": SECRET}},
        headers=service.headers(),
    )
    assert binding.status_code == 201, binding.text
    assert binding.json()["external_id"] == BOT_ID
    assert binding.json()["webhook_path"] == f"/v1/channels/telegram/{BOT_ID}"
    assert BOT_TOKEN not in binding.text and SECRET not in binding.text
    return service, telegram


def hook_headers(service: Service, secret: str | None = SECRET) -> dict[str, str]:
    headers = {"X-Internal-Token": service.headers()["X-Internal-Token"], "Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    return headers


@pytest.mark.asyncio
async def test_telegram_round_trip_and_duplicates(
    fake: Fake, chat: FakeChat, service_factory: ServiceFactory, database_url: str
) -> None:
    service, telegram = await setup(fake, chat, service_factory, database_url=database_url)
    chat.reply_text = "Заказ A-1001 отправлен (трек: RU123456789). Ответ [1]!"
    response = await service.client.post(WEBHOOK, json=update(1), headers=hook_headers(service))
    assert response.status_code == 200, response.text
    assert response.json() == {"ok": True, "processed": 1, "duplicates": 0, "ignored": 0}
    assert len(chat.inbound) == 1
    inbound = chat.inbound[0]
    assert inbound.channel == "telegram"
    assert inbound.end_user_id == "telegram:123456789"
    assert inbound.external_key == f"{BOT_ID}:123456789"
    assert inbound.text == "Where is my order A-1001?"
    assert inbound.idempotency_key == f"telegram:{BOT_ID}:1"
    assert (
        inbound.profile is not None
        and inbound.profile.name == "Иван Иванов"
        and inbound.profile.locale == "ru"
    )
    assert chat.server.requests[0].headers["X-Tenant-ID"] == "acme"
    assert telegram.sent == [
        {
            "chat_id": "123456789",
            "text": "Заказ A\\-1001 отправлен \\(трек: RU123456789\\)\\. Ответ \\[1\\]\\!",
            "parse_mode": "MarkdownV2",
        }
    ]
    # Telegram retries a webhook it thinks failed: the same update_id is processed once.
    again = await service.client.post(WEBHOOK, json=update(1), headers=hook_headers(service))
    assert again.json() == {"ok": True, "processed": 0, "duplicates": 1, "ignored": 0}
    assert len(chat.inbound) == 1 and len(telegram.sent) == 1


@pytest.mark.asyncio
async def test_forged_and_malformed_webhooks(
    fake: Fake, chat: FakeChat, service_factory: ServiceFactory
) -> None:
    service, telegram = await setup(fake, chat, service_factory)
    missing = await service.client.post(WEBHOOK, json=update(2), headers=hook_headers(service, secret=None))
    assert_error_shape(missing, 401, "unauthorized")
    forged = await service.client.post(WEBHOOK, json=update(2), headers=hook_headers(service, secret="guess"))
    assert_error_shape(forged, 403, "forbidden")
    not_json = await service.client.post(WEBHOOK, content=b"{not json", headers=hook_headers(service))
    assert_error_shape(not_json, 400, "bad_request")
    no_update_id = await service.client.post(
        WEBHOOK, json={"message": {"text": "hi"}}, headers=hook_headers(service)
    )
    assert_error_shape(no_update_id, 400, "bad_request")
    no_chat = await service.client.post(
        WEBHOOK, json={"update_id": 9, "message": {"text": "hi"}}, headers=hook_headers(service)
    )
    assert_error_shape(no_chat, 400, "bad_request")
    unknown_bot = await service.client.post(
        "/internal/v1/channels/telegram/42", json=update(3), headers=hook_headers(service)
    )
    assert_error_shape(unknown_bot, 404, "not_found")
    assert chat.inbound == [] and telegram.sent == []
    metrics = (await service.client.get("/metrics")).text
    assert 'switchboard_integrations_webhooks_total{outcome="forged",source="telegram"}' in metrics


@pytest.mark.asyncio
async def test_start_edits_stickers_and_photos_get_polite_answers(
    fake: Fake, chat: FakeChat, service_factory: ServiceFactory
) -> None:
    service, telegram = await setup(fake, chat, service_factory)
    headers = hook_headers(service)
    await service.client.post(WEBHOOK, json=update(10, "/start"), headers=headers)
    sticker = update(
        11,
        None,
        sticker={
            "file_id": "CAACAgIAAxkBAAE",
            "file_unique_id": "AgAD",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
        },
    )
    await service.client.post(WEBHOOK, json=sticker, headers=headers)
    photo = update(
        12,
        None,
        photo=[
            {"file_id": "AgACAgIAAxk", "file_unique_id": "AQAD", "width": 90, "height": 67, "file_size": 1234}
        ],
        caption="see",
    )
    await service.client.post(WEBHOOK, json=photo, headers=headers)
    edited = update(13, "fixed typo")
    edited["edited_message"] = {**edited.pop("message"), "edit_date": 1732480100}
    await service.client.post(WEBHOOK, json=edited, headers=headers)
    joined = await service.client.post(
        WEBHOOK,
        json={"update_id": 14, "my_chat_member": {"chat": {"id": 1, "type": "private"}}},
        headers=headers,
    )
    assert joined.json()["ignored"] == 1
    assert chat.inbound == [], "none of these reach the assistant"
    texts = [m["text"] for m in telegram.sent]
    s = service.settings
    assert texts == [
        escape_markdown_v2(s.start_text),
        escape_markdown_v2(s.unsupported_text),
        escape_markdown_v2(s.unsupported_text),
        escape_markdown_v2(s.edited_text),
    ]


@pytest.mark.asyncio
async def test_long_answers_are_split_and_send_failures_retried(
    fake: Fake, chat: FakeChat, service_factory: ServiceFactory
) -> None:
    service, telegram = await setup(fake, chat, service_factory)
    paragraph = "Lorem ipsum dolor sit amet. " * 60
    chat.reply_text = "\n\n".join([paragraph.strip()] * 6)  # ≈ 10 000 characters
    telegram.failures = [
        (
            429,
            {
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests: retry after 1",
                "parameters": {"retry_after": 1},
            },
        ),
        (502, {"ok": False, "error_code": 502, "description": "Bad Gateway"}),
    ]
    started = time.perf_counter()
    response = await service.client.post(
        WEBHOOK, json=update(20, "long please"), headers=hook_headers(service)
    )
    assert response.status_code == 200, response.text
    assert time.perf_counter() - started >= 0.95, "retry_after was not honoured"
    sent = telegram.sent
    delivered = [m["text"] for m in sent[2:]]
    assert len(delivered) == 3 and all(len(text.replace("\\", "")) <= 4096 for text in delivered)
    assert "".join(t.replace("\\", "") for t in delivered).replace("\n", "").replace(
        " ", ""
    ) == chat.reply_text.replace("\n", "").replace(" ", "")
    metrics = (await service.client.get("/metrics")).text
    assert 'switchboard_integrations_channel_sends_total{channel="telegram",outcome="retry"}' in metrics


@pytest.mark.asyncio
async def test_chat_down_leaves_the_update_for_telegrams_retry(
    fake: Fake, chat: FakeChat, service_factory: ServiceFactory
) -> None:
    service, telegram = await setup(fake, chat, service_factory, http_retries=0)
    chat.fail_inbound = True
    failed = await service.client.post(WEBHOOK, json=update(30), headers=hook_headers(service))
    assert failed.status_code == 502
    chat.fail_inbound = False
    retried = await service.client.post(WEBHOOK, json=update(30), headers=hook_headers(service))
    assert retried.json()["processed"] == 1
    assert len(telegram.sent) == 1


def test_markdown_v2_escaping_covers_every_special_character() -> None:
    special = "_*[]()~`>#+-=|{}.!\\"
    assert escape_markdown_v2(special) == "".join("\\" + ch for ch in special)
    assert escape_markdown_v2("Привет, мир") == "Привет, мир"


def test_split_text_prefers_paragraphs_then_words() -> None:
    text = "a" * 50 + "\n\n" + "b" * 50
    assert split_text(text, 60) == ["a" * 50, "b" * 50]
    assert split_text("word " * 30, 20) == ["word word word word"] * 7 + ["word word"]
    assert split_text("x" * 45, 20) == ["x" * 20, "x" * 20, "x" * 5]
