"""What a public key may decide when it opens a conversation or posts a message: never the messenger
channel or chat key (that routes a messenger's messages), never who the customer is in the CRM, and the
provider chain only with the tenant's own secret keys, among the tenant's providers."""

from __future__ import annotations

from typing import Any

import pytest

from switchboard_chat.turn.confirmation import is_confirmation

WIDGET = {"X-Key-Scope": "widget", "X-End-User-ID": "anon:visitor-1"}
SERVER = {"X-Key-Scope": "server"}


@pytest.fixture
def database_url(tmp_path: Any) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/chat.db"


@pytest.mark.asyncio
async def test_messenger_conversations_are_opened_only_by_inbound(chat: Any) -> None:
    inbound = {
        "channel": "telegram",
        "end_user_id": "telegram:42",
        "external_key": "bot:42",
        "text": "How do I add a custom domain?",
        "idempotency_key": "tg:1",
    }
    for headers, body in (
        (WIDGET, {"end_user_id": "anon:visitor-1", "channel": "telegram", "external_key": "bot:42"}),
        (WIDGET, {"end_user_id": "anon:visitor-1", "channel": "api"}),
        (WIDGET, {"end_user_id": "anon:visitor-1", "external_key": "bot:42"}),
        (SERVER, {"end_user_id": "telegram:42", "channel": "whatsapp", "external_key": "bot:42"}),
        ({}, {"end_user_id": "telegram:42", "channel": "telegram", "external_key": "bot:42"}),
    ):
        async with chat.client(**headers) as client:
            refused = await client.post("/internal/v1/conversations", json=body)
            assert refused.status_code == 403, (headers, body, refused.text)
            assert refused.json()["error"]["code"] == "forbidden"
    async with chat.client(**WIDGET) as client:
        own = (await client.post("/internal/v1/conversations", json={"end_user_id": "anon:visitor-1"})).json()
        assert own["channel"] == "web" and own["external_key"] is None
    async with chat.client(**SERVER) as client:
        api = await client.post(
            "/internal/v1/conversations",
            json={"end_user_id": "u1", "channel": "api", "external_key": "bot:42"},
        )
        assert api.status_code == 201
    async with chat.client() as client:
        first = (await client.post("/internal/v1/inbound", json=inbound)).json()
        assert first["conversation_id"] not in (own["id"], api.json()["id"])
        second = (
            await client.post("/internal/v1/inbound", json={**inbound, "idempotency_key": "tg:2"})
        ).json()
        assert second["conversation_id"] == first["conversation_id"]


@pytest.mark.asyncio
async def test_a_public_body_never_says_who_the_customer_is(chat: Any, fleet: Any) -> None:
    verified = {"X-Key-Scope": "widget", "X-End-User-ID": "visitor-77", "X-End-User-Verified": "1"}
    async with chat.client(**verified) as client:
        for profile in ({"email": "ada@example.com"}, {"crm_id": "cus_1"}):
            refused = await client.post(
                "/internal/v1/conversations", json={"end_user_id": "visitor-77", "profile": profile}
            )
            assert refused.status_code == 422, refused.text
        created = await client.post(
            "/internal/v1/conversations",
            json={"end_user_id": "visitor-77", "profile": {"name": "Ada", "locale": "en"}},
        )
        assert created.status_code == 201
        turn = await client.post(
            f"/internal/v1/conversations/{created.json()['id']}/messages",
            json={"text": "Where is order A-1001?"},
        )
    assert "TRK123" not in turn.json()["reply"]["text"]
    assert fleet.calls("/internal/v1/crm/customers/lookup") == [{"by": "id", "value": "visitor-77"}]


@pytest.mark.asyncio
async def test_only_secret_keys_choose_providers_among_the_tenants(chat: Any) -> None:
    async with chat.client(**SERVER) as client:
        assert (
            await client.put("/internal/v1/assistant", json={"providers": ["extractive"]})
        ).status_code == 200
    async with chat.client(**WIDGET) as client:
        cid = (
            await client.post("/internal/v1/conversations", json={"end_user_id": "anon:visitor-1"})
        ).json()["id"]
        chosen = await client.post(
            f"/internal/v1/conversations/{cid}/messages", json={"text": "hi", "providers": ["extractive"]}
        )
        assert chosen.status_code == 403 and chosen.json()["error"]["code"] == "forbidden"
    async with chat.client(**SERVER) as client:
        cid = (await client.post("/internal/v1/conversations", json={"end_user_id": "u2"})).json()["id"]
        outside = await client.post(
            f"/internal/v1/conversations/{cid}/messages", json={"text": "hi", "providers": ["openai"]}
        )
        assert outside.status_code == 403
        inside = await client.post(
            f"/internal/v1/conversations/{cid}/messages", json={"text": "hi", "providers": ["extractive"]}
        )
        assert inside.status_code == 200 and inside.json()["reply"]["provider"] == "extractive"


@pytest.mark.parametrize("text", ["yes", "Yes, please do", "ok", "Да", "да, подтверждаю", "sure, go ahead"])
def test_confirmations(text: str) -> None:
    assert is_confirmation(text)


@pytest.mark.parametrize(
    "text",
    [
        "no",
        "yes but not now",
        "нет",
        "да нет, не надо",
        "How long does shipping take?",
        "yes " + "and more words here to be sure",
        "",
    ],
)
def test_not_confirmations(text: str) -> None:
    assert not is_confirmation(text)


@pytest.mark.asyncio
async def test_an_api_thread_continues_the_conversation_kept_for_its_key(chat: Any) -> None:
    """``resume``: the newest conversation opened through the API with the key, whoever its end user;
    never a messenger's conversation with the same key, and never for a widget key."""
    thread = {"channel": "api", "external_key": "thread:order-help", "resume": True}
    async with chat.client(**SERVER) as client:
        opened = await client.post("/internal/v1/conversations", json={"end_user_id": "api:a", **thread})
        assert opened.status_code == 201, opened.text
        turn = await client.post(
            f"/internal/v1/conversations/{opened.json()['id']}/messages", json={"text": "Hello"}
        )
        assert turn.status_code == 200, turn.text
        again = await client.post("/internal/v1/conversations", json={"end_user_id": "api:b", **thread})
        assert again.status_code == 200, again.text
        assert again.json()["id"] == opened.json()["id"]
        assert again.json()["end_user_id"] == "api:a"
        other = await client.post(
            "/internal/v1/conversations", json={"end_user_id": "api:a", **thread, "external_key": "thread:x"}
        )
        assert other.status_code == 201 and other.json()["id"] != opened.json()["id"]
        keyless = await client.post(
            "/internal/v1/conversations", json={"end_user_id": "api:a", "channel": "api", "resume": True}
        )
        assert keyless.status_code == 422, keyless.text
    async with chat.client() as client:
        inbound = await client.post(
            "/internal/v1/inbound",
            json={
                "channel": "telegram",
                "end_user_id": "telegram:7",
                "external_key": "bot:7",
                "text": "Hi",
                "idempotency_key": "tg:7",
            },
        )
        assert inbound.status_code == 200, inbound.text
    async with chat.client(**SERVER) as client:
        api_same_key = await client.post(
            "/internal/v1/conversations",
            json={"end_user_id": "api:a", "channel": "api", "external_key": "bot:7", "resume": True},
        )
        assert api_same_key.status_code == 201
        assert api_same_key.json()["id"] != inbound.json()["conversation_id"]
    async with chat.client(**WIDGET) as client:
        refused = await client.post(
            "/internal/v1/conversations",
            json={"end_user_id": "anon:visitor-1", "external_key": "thread:order-help", "resume": True},
        )
        assert refused.status_code == 403
