"""Answers as messenger users see them, checked at local stand-ins of the Bot API and the Graph API: Telegram
gets HTML it can parse (bold as a bold entity, not ``\\*\\*``), WhatsApp its own ``*bold*``, the cited sources
follow as links or titles, and the bot's own replies speak the customer's language."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from integrations_fakes import FakeChat, FakeServer, ServiceFactory
from test_telegram import BOT_TOKEN, SECRET, FakeTelegram, hook_headers, parse_telegram_html, update
from test_telegram import WEBHOOK as TELEGRAM_WEBHOOK
from test_telegram import setup as telegram_setup
from test_whatsapp import WEBHOOK as WHATSAPP_WEBHOOK
from test_whatsapp import envelope, signed, text_message
from test_whatsapp import setup as whatsapp_setup

from switchboard_integrations.channels.render import OutboundText, Source, TelegramHtml, WhatsAppText, render
from switchboard_integrations.channels.texts import system_text
from switchboard_shared.contracts.chat import Citation

Fake = Callable[[], Awaitable[FakeServer]]

RU_ANSWER = (
    "Вернуть товар можно в течение **30 дней** [1]. Подробности — в разделе *Возвраты* [3].\n\n"
    "- Заявление можно подать онлайн\n- Курьер заберёт товар бесплатно & быстро <обычно за день>"
)
CITATIONS = [
    Citation(
        index=1,
        chunk_id="c1",
        document_id="d1",
        title="Возврат и обмен",
        url="https://shop.example/help/returns?lang=ru&v=2",
    ),
    Citation(index=2, chunk_id="c2", document_id="d2", title="Not cited", url="https://shop.example/x"),
    Citation(index=3, chunk_id="c3", document_id="d3", title="Вопросы о возвратах", url=None),
]


def entity(entities: list[dict[str, object]], text: str, message: str, kind: str) -> dict[str, object]:
    utf16 = message.encode("utf-16-le")
    for item in entities:
        start, length = int(str(item["offset"])) * 2, int(str(item["length"])) * 2
        if item["type"] == kind and utf16[start : start + length].decode("utf-16-le") == text:
            return item
    raise AssertionError(f"no {kind} entity over {text!r} in {entities}")


@pytest.mark.asyncio
async def test_telegram_gets_html_with_bold_lists_and_sources(
    fake: Fake, chat: FakeChat, service_factory: ServiceFactory
) -> None:
    service, telegram = await telegram_setup(fake, chat, service_factory)
    chat.reply_text, chat.reply_citations = RU_ANSWER, CITATIONS
    response = await service.client.post(
        TELEGRAM_WEBHOOK, json=update(40, "Как вернуть товар?"), headers=hook_headers(service)
    )
    assert response.status_code == 200, response.text
    [sent] = telegram.sent
    assert sent["parse_mode"] == "HTML"
    [message] = telegram.delivered
    text, entities = message["text"], message["entities"]
    assert "**" not in text and "\\*" not in text and "*" not in text
    assert "30 дней" in text
    entity(entities, "30 дней", text, "bold")
    entity(entities, "Возвраты", text, "italic")
    assert (
        "• Заявление можно подать онлайн\n• Курьер заберёт товар бесплатно & быстро <обычно за день>" in text
    )
    # The sources the answer cites, in the answer's language: [1] as a link, [3] by its title; [2] not cited.
    assert text.endswith("Источники:\n[1] Возврат и обмен\n[3] Вопросы о возвратах")
    link = entity(entities, "Возврат и обмен", text, "text_link")
    assert link["url"] == "https://shop.example/help/returns?lang=ru&v=2"
    entity(entities, "Источники:", text, "bold")
    assert "Not cited" not in text


@pytest.mark.asyncio
async def test_telegram_refusing_the_markup_still_gets_the_words(
    fake: Fake, chat: FakeChat, service_factory: ServiceFactory
) -> None:
    service, telegram = await telegram_setup(fake, chat, service_factory)
    chat.reply_text = "Delivery takes **3 days** & costs <5 €."
    telegram.failures = [
        (400, {"ok": False, "error_code": 400, "description": "Bad Request: can't parse entities: at byte 7"})
    ]
    response = await service.client.post(TELEGRAM_WEBHOOK, json=update(41), headers=hook_headers(service))
    assert response.status_code == 200, response.text
    first, second = telegram.sent
    assert (
        first["parse_mode"] == "HTML" and first["text"] == "Delivery takes <b>3 days</b> &amp; costs &lt;5 €."
    )
    assert "parse_mode" not in second and second["text"] == "Delivery takes 3 days & costs <5 €."
    assert [m["text"] for m in telegram.delivered] == ["Delivery takes 3 days & costs <5 €."]


@pytest.mark.asyncio
async def test_a_binding_on_markdown_v2_gets_it_escaped_by_telegrams_rules(
    fake: Fake, chat: FakeChat, service_factory: ServiceFactory
) -> None:
    telegram = FakeTelegram(await fake())
    service = await service_factory(telegram_api_base=telegram.server.url, chat_url=chat.server.url)
    created = await service.client.post(
        "/internal/v1/connectors/channels",
        json={
            "channel": "telegram",
            "settings": {"parse_mode": "MarkdownV2"},
            "secrets": {"bot_token": BOT_TOKEN, "secret_token": SECRET},
        },
        headers=service.headers(),
    )
    assert created.status_code == 201, created.text
    chat.reply_text, chat.reply_citations = "Срок — **30 дней** (A-1001).", CITATIONS[:1]
    await service.client.post(TELEGRAM_WEBHOOK, json=update(42), headers=hook_headers(service))
    [sent] = telegram.sent
    assert sent["parse_mode"] == "MarkdownV2"
    assert sent["text"] == (
        "Срок — *30 дней* \\(A\\-1001\\)\\.\n\n*Источники:*\n"
        "\\[1\\] [Возврат и обмен](https://shop.example/help/returns?lang=ru&v=2)"
    )


@pytest.mark.asyncio
async def test_whatsapp_gets_its_own_formatting_and_sources(
    fake: Fake, chat: FakeChat, service_factory: ServiceFactory
) -> None:
    service, graph = await whatsapp_setup(fake, chat, service_factory)
    chat.reply_text = "Returns are accepted within **30 days** [1], see _Returns_ [3]."
    chat.reply_citations = CITATIONS
    body, headers = signed(service, text_message("wamid.R1", "How do I return an item?"))
    assert (await service.client.post(WHATSAPP_WEBHOOK, content=body, headers=headers)).status_code == 200
    [sent] = graph.server.calls("POST")
    assert sent.json()["text"]["body"] == (
        "Returns are accepted within *30 days* [1], see _Returns_ [3].\n\n*Sources:*\n"
        "[1] Возврат и обмен (https://shop.example/help/returns?lang=ru&v=2)\n[3] Вопросы о возвратах"
    )


@pytest.mark.asyncio
async def test_system_replies_speak_the_customers_language(
    fake: Fake, chat: FakeChat, service_factory: ServiceFactory
) -> None:
    service, graph = await whatsapp_setup(fake, chat, service_factory)
    chat.reply_text = "Заказ B-2001 отправлен."
    body, headers = signed(service, text_message("wamid.L1", "Где мой заказ B-2001?"))
    await service.client.post(WHATSAPP_WEBHOOK, content=body, headers=headers)
    sticker = envelope(
        {
            "contacts": [{"profile": {"name": "Ольга"}, "wa_id": "14155550123"}],
            "messages": [
                {
                    "from": "14155550123",
                    "id": "wamid.L2",
                    "timestamp": "1",
                    "type": "sticker",
                    "sticker": {"mime_type": "image/webp", "sha256": "abc", "id": "55", "animated": False},
                }
            ],
        }
    )
    body, headers = signed(service, sticker)
    await service.client.post(WHATSAPP_WEBHOOK, content=body, headers=headers)
    texts = [call.json()["text"]["body"] for call in graph.server.calls("POST")]
    # WhatsApp says nothing of the user's language: the chat's last words (Russian) decide.
    assert texts == ["Заказ B-2001 отправлен.", system_text("unsupported", "ru")]
    assert texts[1].startswith("Извините")

    tg_service, telegram = await telegram_setup(fake, chat, service_factory)
    english = update(43, "/start")
    english["message"]["from"]["language_code"] = "en-GB"
    await tg_service.client.post(TELEGRAM_WEBHOOK, json=english, headers=hook_headers(tg_service))
    await tg_service.client.post(
        TELEGRAM_WEBHOOK, json=update(44, "/start"), headers=hook_headers(tg_service)
    )
    assert [m["text"] for m in telegram.sent] == [system_text("start", "en"), system_text("start", "ru")]


def test_long_answers_split_between_blocks_so_every_piece_parses() -> None:
    paragraph = "Пункт с **важным** текстом и ссылкой [сайт](https://example.com/a?b=1&c=2). " * 20
    message = OutboundText(
        text="\n\n".join([paragraph.strip()] * 8),
        format="markdown",
        sources=(Source(1, "Title <1> & co", "https://example.com/1"),),
        language="ru",
    )
    pieces = render(message, TelegramHtml(), 4096)
    assert len(pieces) >= 3
    for piece in pieces:
        text, entities = parse_telegram_html(piece)
        assert len(text.encode("utf-16-le")) // 2 <= 4096
        assert any(e["type"] == "bold" for e in entities)
    assert parse_telegram_html(pieces[-1])[0].endswith("Источники:\n[1] Title <1> & co")
    whatsapp = render(message, WhatsAppText(), 4096)
    assert all(len(piece) <= 4096 for piece in whatsapp) and "**" not in "".join(whatsapp)
