"""Telegram round trips against a local stand-in for api.telegram.org and for chat: secret-token check,
duplicates dropped, /start, edits and stickers answered politely, MarkdownV2 escaping, long answers split,
429 retry_after honoured and send failures retried and counted."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from html.parser import HTMLParser
from typing import Any

import pytest
from aiohttp import web
from integrations_fakes import FakeChat, FakeServer, Recorded, Service, ServiceFactory, assert_error_shape

from switchboard_integrations.channels.render import escape_markdown_v2, split_text
from switchboard_integrations.channels.texts import system_text

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


HTML_ENTITY_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "s": "strikethrough",
    "code": "code",
    "pre": "pre",
    "a": "text_link",
    "blockquote": "blockquote",
}


class _TelegramHtml(HTMLParser):
    """Telegram's HTML parse mode as https://core.telegram.org/bots/api#html-style describes it: only the listed
    tags, properly nested; the text and its entities (offsets in UTF-16 code units) come out."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text = ""
        self.entities: list[dict[str, Any]] = []
        self.open: list[tuple[str, int, dict[str, Any]]] = []

    def _offset(self) -> int:
        return len(self.text.encode("utf-16-le")) // 2

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in HTML_ENTITY_TYPES:
            raise ValueError(f'Unsupported start tag "{tag}"')
        extra: dict[str, Any] = {}
        if tag == "a":
            href = dict(attrs).get("href")
            if not href:
                raise ValueError("A link needs href")
            extra["url"] = href
        self.open.append((tag, self._offset(), extra))

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1][0] != tag:
            raise ValueError(f'Unmatched end tag "{tag}"')
        _, start, extra = self.open.pop()
        if self._offset() > start:
            self.entities.append(
                {"type": HTML_ENTITY_TYPES[tag], "offset": start, "length": self._offset() - start, **extra}
            )

    def handle_data(self, data: str) -> None:
        self.text += data


def parse_telegram_html(markup: str) -> tuple[str, list[dict[str, Any]]]:
    if re.search(r"&(?!(lt|gt|amp|quot);)", markup) or re.search(r"<(?![a-z/])", markup):
        raise ValueError("Unescaped & or <")
    parser = _TelegramHtml()
    parser.feed(markup)
    parser.close()
    if parser.open:
        raise ValueError(f'Unclosed tag "{parser.open[-1][0]}"')
    return parser.text, sorted(parser.entities, key=lambda e: (e["offset"], -e["length"]))


class FakeTelegram:
    """``sendMessage`` as the Bot API answers it: HTML is parsed (or refused with "can't parse entities") and
    the message comes back with its plain text and entities, which ``delivered`` keeps."""

    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.next_id = 500
        self.failures: list[tuple[int, dict[str, Any]]] = []
        self.delivered: list[dict[str, Any]] = []
        server.routes[f"POST /bot{BOT_TOKEN}/sendMessage"] = self._send
        server.routes[f"GET /bot{BOT_TOKEN}/getMe"] = self._get_me

    async def _get_me(self, request: Recorded) -> web.StreamResponse:
        """https://core.telegram.org/bots/api#getme: the bot's User object."""
        return web.json_response(
            {
                "ok": True,
                "result": {"id": int(BOT_ID), "is_bot": True, "first_name": "Shop", "username": "shop_bot"},
            }
        )

    async def _send(self, request: Recorded) -> web.StreamResponse:
        if self.failures:
            status, body = self.failures.pop(0)
            return web.json_response(body, status=status)
        body = request.json()
        text, entities = body["text"], []
        if body.get("parse_mode") == "HTML":
            try:
                text, entities = parse_telegram_html(body["text"])
            except ValueError as exc:
                return web.json_response(
                    {
                        "ok": False,
                        "error_code": 400,
                        "description": f"Bad Request: can't parse entities: {exc}",
                    },
                    status=400,
                )
        if not 1 <= len(text.encode("utf-16-le")) // 2 <= 4096:
            return web.json_response(
                {"ok": False, "error_code": 400, "description": "Bad Request: message is too long"},
                status=400,
            )
        self.next_id += 1
        message = {
            "message_id": self.next_id,
            "chat": {"id": body["chat_id"], "type": "private"},
            "date": 1732480001,
            "text": text,
            **({"entities": entities} if entities else {}),
        }
        self.delivered.append(message)
        return web.json_response({"ok": True, "result": message})

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
            "text": "Заказ A-1001 отправлен (трек: RU123456789). Ответ [1]!",
            "parse_mode": "HTML",
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
    # The user's Telegram speaks Russian (language_code "ru"): so do the bot's own replies.
    assert texts == [
        system_text("start", "ru"),
        system_text("unsupported", "ru"),
        system_text("unsupported", "ru"),
        system_text("edited", "ru"),
    ]
    assert texts[0].startswith("Здравствуйте")


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
    assert len(delivered) == 3 and all(len(text) <= 4096 for text in delivered)
    assert "".join(delivered).replace("\n", "").replace(" ", "") == chat.reply_text.replace("\n", "").replace(
        " ", ""
    )
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


@pytest.mark.asyncio
async def test_a_binding_can_carry_its_own_api_base_for_a_trial(
    fake: Fake, chat: FakeChat, service_factory: ServiceFactory
) -> None:
    """One tenant tries the bot against a stand-in while the fleet keeps talking to the real Bot API."""
    telegram = FakeTelegram(await fake())
    service = await service_factory(telegram_api_base="http://127.0.0.1:9", chat_url=chat.server.url)
    refused = await service.client.post(
        "/internal/v1/connectors/channels",
        json={
            "channel": "telegram",
            "settings": {"api_base": "file:///etc/passwd"},
            "secrets": {"bot_token": BOT_TOKEN, "secret_token": SECRET},
        },
        headers=service.headers(),
    )
    assert_error_shape(refused, 422, "validation_error")
    created = await service.client.post(
        "/internal/v1/connectors/channels",
        json={
            "channel": "telegram",
            "settings": {"api_base": telegram.server.url},
            "secrets": {"bot_token": BOT_TOKEN, "secret_token": SECRET},
        },
        headers=service.headers(),
    )
    assert created.status_code == 201, created.text
    assert created.json()["settings"]["api_base"] == telegram.server.url
    response = await service.client.post(WEBHOOK, json=update(60), headers=hook_headers(service))
    assert response.status_code == 200, response.text
    assert [m["text"] for m in telegram.sent] == ["Your order A-1001 has shipped."]


@pytest.mark.asyncio
async def test_binding_with_its_own_api_base_is_verified_at_a_trusted_base(
    fake: Fake, chat: FakeChat, service_factory: ServiceFactory
) -> None:
    """A binding's own API base could answer getMe with any bot id, so it verifies the token only when
    the operator allow-listed it; otherwise the fleet's base does, and its traffic passes the guard."""
    fleet = FakeTelegram(await fake())
    own = FakeTelegram(await fake())
    body = {
        "channel": "telegram",
        "settings": {"api_base": own.server.url},
        "secrets": {"bot_token": BOT_TOKEN, "secret_token": SECRET},
    }
    trusted = await service_factory(telegram_api_base=fleet.server.url, chat_url=chat.server.url)
    bound = await trusted.client.post(
        "/internal/v1/connectors/channels", json=body, headers=trusted.headers()
    )
    assert bound.status_code == 201, bound.text
    assert own.server.calls("GET", "/bot") and not fleet.server.calls("GET", "/bot")
    untrusted = await service_factory(
        telegram_api_base=fleet.server.url, chat_url=chat.server.url, url_allowlist=[]
    )
    headers = untrusted.headers(tenant="other")
    own.server.requests.clear()
    await untrusted.client.delete(f"/internal/v1/connectors/channels/{bound.json()['id']}", headers=headers)
    again = await untrusted.client.post("/internal/v1/connectors/channels", json=body, headers=headers)
    assert again.status_code in (201, 409), again.text
    assert fleet.server.calls("GET", "/bot") and not own.server.calls("GET", "/bot")
    bad = {**body, "settings": {"api_base": f"{own.server.url}/?x="}}
    refused = await untrusted.client.post("/internal/v1/connectors/channels", json=bad, headers=headers)
    assert_error_shape(refused, 422, "validation_error")
