"""WhatsApp Cloud API round trips against local stand-ins for the Graph API and chat: the GET handshake,
``X-Hub-Signature-256`` over the raw body, text in and reply out, statuses recorded, duplicates dropped."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from integrations_fakes import FakeChat, FakeServer, Recorded, Service, ServiceFactory, assert_error_shape
from sqlalchemy import select

from switchboard_integrations.channels.models import ChannelDeliveryRow
from switchboard_integrations.channels.texts import system_text
from switchboard_shared.db import create_engine, create_sessionmaker

Fake = Callable[[], Awaitable[FakeServer]]
PHONE_ID = "106540352242922"
APP_SECRET = "app-secret-0123456789abcdef"
VERIFY_TOKEN = "verify-me-please"
ACCESS_TOKEN = "EAAJB-access-token-xyz"
WEBHOOK = f"/internal/v1/channels/whatsapp/{PHONE_ID}"


def envelope(value: dict[str, Any]) -> dict[str, Any]:
    """The webhook shape of https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/payload-examples."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_ID},
                            **value,
                        },
                        "field": "messages",
                    }
                ],
            }
        ],
    }


def text_message(message_id: str, body: str = "Hi! Where is order B-2001?") -> dict[str, Any]:
    return envelope(
        {
            "contacts": [{"profile": {"name": "Emily Carter"}, "wa_id": "14155550123"}],
            "messages": [
                {
                    "from": "14155550123",
                    "id": message_id,
                    "timestamp": "1732480000",
                    "text": {"body": body},
                    "type": "text",
                }
            ],
        }
    )


def status_update(message_id: str, status: str) -> dict[str, Any]:
    return envelope(
        {
            "statuses": [
                {
                    "id": message_id,
                    "status": status,
                    "timestamp": "1732480050",
                    "recipient_id": "14155550123",
                    "conversation": {"id": "CONVERSATION_ID", "origin": {"type": "service"}},
                    "pricing": {"billable": True, "pricing_model": "CBP", "category": "service"},
                }
            ]
        }
    )


def signed(
    service: Service, payload: dict[str, Any], *, secret: str = APP_SECRET
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload, ensure_ascii=False).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {
        "X-Internal-Token": service.headers()["X-Internal-Token"],
        "Content-Type": "application/json",
        "X-Hub-Signature-256": signature,
    }


class FakeGraph:
    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.count = 0
        self.failures: list[tuple[int, dict[str, Any]]] = []
        server.routes[f"POST /v21.0/{PHONE_ID}/messages"] = self._send
        server.routes[f"GET /v21.0/{PHONE_ID}"] = self._phone_number

    async def _phone_number(self, request: Recorded) -> web.StreamResponse:
        """The WhatsApp Business phone number node, readable only with a token that owns it."""
        if request.headers.get("Authorization") != f"Bearer {ACCESS_TOKEN}":
            error = {"message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190}
            return web.json_response({"error": error}, status=401)
        return web.json_response({"id": PHONE_ID})

    async def _send(self, request: Recorded) -> web.StreamResponse:
        if self.failures:
            status, body = self.failures.pop(0)
            return web.json_response(body, status=status)
        self.count += 1
        body = request.json()
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                "messages": [{"id": f"wamid.HBgLMTQxNTU1NTAxMjMVAgARGBI{self.count:04d}"}],
            }
        )


async def setup(
    fake: Fake, chat: FakeChat, service_factory: ServiceFactory, **overrides: Any
) -> tuple[Service, FakeGraph]:
    graph = FakeGraph(await fake())
    service = await service_factory(whatsapp_api_base=graph.server.url, chat_url=chat.server.url, **overrides)
    binding = await service.client.post(
        "/internal/v1/connectors/channels",
        json={
            "channel": "whatsapp",
            "settings": {"phone_number_id": PHONE_ID},
            "secrets": {"app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN, "access_token": ACCESS_TOKEN},
        },
        headers=service.headers(),
    )
    assert binding.status_code == 201, binding.text
    assert APP_SECRET not in binding.text and ACCESS_TOKEN not in binding.text
    return service, graph


@pytest.mark.asyncio
async def test_verification_handshake(fake: Fake, chat: FakeChat, service_factory: ServiceFactory) -> None:
    service, _ = await setup(fake, chat, service_factory)
    internal = {"X-Internal-Token": service.headers()["X-Internal-Token"]}
    ok = await service.client.get(
        WEBHOOK,
        params={"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"},
        headers=internal,
    )
    assert ok.status_code == 200 and ok.text == "1158201444"
    assert ok.headers["content-type"].startswith("text/plain")
    wrong = await service.client.get(
        WEBHOOK,
        params={"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "1"},
        headers=internal,
    )
    assert_error_shape(wrong, 403, "forbidden")
    no_mode = await service.client.get(WEBHOOK, params={"hub.challenge": "1"}, headers=internal)
    assert_error_shape(no_mode, 400, "bad_request")


@pytest.mark.asyncio
async def test_whatsapp_round_trip_statuses_and_duplicates(
    fake: Fake, chat: FakeChat, service_factory: ServiceFactory, database_url: str
) -> None:
    service, graph = await setup(fake, chat, service_factory, database_url=database_url)
    chat.reply_text = "Order B-2001 has shipped."
    body, headers = signed(service, text_message("wamid.IN1"))
    response = await service.client.post(WEBHOOK, content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["processed"] == 1
    inbound = chat.inbound[0]
    assert (inbound.channel, inbound.end_user_id, inbound.external_key) == (
        "whatsapp",
        "whatsapp:14155550123",
        f"{PHONE_ID}:14155550123",
    )
    assert (
        inbound.profile is not None
        and inbound.profile.name == "Emily Carter"
        and inbound.profile.phone == "+14155550123"
    )
    [sent] = graph.server.calls("POST")
    assert sent.path == f"/v21.0/{PHONE_ID}/messages"
    assert sent.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert sent.json() == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "14155550123",
        "type": "text",
        "text": {"preview_url": False, "body": "Order B-2001 has shipped."},
    }
    duplicate = await service.client.post(WEBHOOK, content=body, headers=headers)
    assert duplicate.json()["duplicates"] == 1 and len(chat.inbound) == 1 and graph.count == 1

    for status in ("sent", "delivered", "read", "read"):
        body, headers = signed(service, status_update("wamid.HBgLMTQxNTU1NTAxMjMVAgARGBI0001", status))
        assert (await service.client.post(WEBHOOK, content=body, headers=headers)).status_code == 200
    engine = create_engine(service.settings.effective_database_url())
    try:
        async with create_sessionmaker(engine)() as session:
            delivery = (await session.scalars(select(ChannelDeliveryRow))).one()
    finally:
        await engine.dispose()
    assert delivery.provider_status == "read" and delivery.status == "sent"


@pytest.mark.asyncio
async def test_forged_malformed_and_unsupported(
    fake: Fake, chat: FakeChat, service_factory: ServiceFactory
) -> None:
    service, graph = await setup(fake, chat, service_factory)
    body, headers = signed(service, text_message("wamid.F1"), secret="not-the-app-secret")
    assert_error_shape(await service.client.post(WEBHOOK, content=body, headers=headers), 403, "forbidden")
    headers.pop("X-Hub-Signature-256")
    assert_error_shape(await service.client.post(WEBHOOK, content=body, headers=headers), 401, "unauthorized")
    # The signature covers the raw bytes: re-serialised JSON with the same meaning does not verify.
    body, headers = signed(service, text_message("wamid.F2"))
    tampered = json.dumps(json.loads(body), indent=1).encode()
    assert_error_shape(
        await service.client.post(WEBHOOK, content=tampered, headers=headers), 403, "forbidden"
    )
    body, headers = signed(service, {"object": "page", "entry": []})
    assert_error_shape(await service.client.post(WEBHOOK, content=body, headers=headers), 400, "bad_request")
    body, headers = signed(service, envelope({"messages": [{"type": "text"}]}))
    assert_error_shape(await service.client.post(WEBHOOK, content=body, headers=headers), 400, "bad_request")
    assert chat.inbound == [] and graph.count == 0

    image = envelope(
        {
            "contacts": [{"profile": {"name": "Emily"}, "wa_id": "14155550123"}],
            "messages": [
                {
                    "from": "14155550123",
                    "id": "wamid.IMG",
                    "timestamp": "1",
                    "type": "image",
                    "image": {"caption": "look", "mime_type": "image/jpeg", "sha256": "abc", "id": "1234"},
                }
            ],
        }
    )
    body, headers = signed(service, image)
    assert (await service.client.post(WEBHOOK, content=body, headers=headers)).json()["processed"] == 1
    [sent] = graph.server.calls("POST")
    assert sent.json()["text"]["body"] == system_text("unsupported", "en")
    assert chat.inbound == []


@pytest.mark.asyncio
async def test_graph_throttling_is_retried(
    fake: Fake, chat: FakeChat, service_factory: ServiceFactory
) -> None:
    service, graph = await setup(fake, chat, service_factory)
    graph.failures = [
        (
            400,
            {
                "error": {
                    "message": "(#130429) Rate limit hit",
                    "type": "OAuthException",
                    "code": 130429,
                    "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam",
                }
            },
        ),
        (500, {"error": {"message": "Service temporarily unavailable", "code": 2}}),
    ]
    body, headers = signed(service, text_message("wamid.RETRY"))
    response = await service.client.post(WEBHOOK, content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert len(graph.server.calls("POST")) == 3 and graph.count == 1
    graph.failures = [
        (400, {"error": {"message": "(#131030) Recipient phone number not in allowed list", "code": 131030}})
    ]
    body, headers = signed(service, text_message("wamid.FAIL"))
    failed = await service.client.post(WEBHOOK, content=body, headers=headers)
    # A refusal that no retry cures is recorded as failed (with Meta's reason), and the webhook acknowledged:
    # Meta's redelivery would only be refused again.
    assert failed.status_code == 200, failed.text
    engine = create_engine(service.settings.effective_database_url())
    try:
        async with create_sessionmaker(engine)() as session:
            rows = (
                await session.scalars(select(ChannelDeliveryRow).order_by(ChannelDeliveryRow.created_at))
            ).all()
    finally:
        await engine.dispose()
    assert [row.status for row in rows] == ["sent", "failed"]
    assert rows[1].last_error is not None and "131030" in rows[1].last_error
