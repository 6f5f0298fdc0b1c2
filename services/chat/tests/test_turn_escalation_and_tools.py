"""The turn's escalation, tools and degradation, with the extractive provider and a stand-in fleet."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from switchboard_shared.deps import encode_identity_claims

VERIFIED = {"X-End-User-ID": "ada", "X-End-User-Verified": "1"}


async def say(client: Any, cid: str, text: str, **extra: Any) -> dict[str, Any]:
    response = await client.post(f"/internal/v1/conversations/{cid}/messages", json={"text": text, **extra})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def sse(client: Any, cid: str, text: str) -> list[tuple[str, dict[str, Any]]]:
    packets = []
    async with client.stream(
        "POST",
        f"/internal/v1/conversations/{cid}/messages",
        json={"text": text},
        headers={"Accept": "text/event-stream"},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        event = None
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data = orjson.loads(line[6:])
                assert data["type"] == event
                if event != "heartbeat":  # a loaded machine may be slower than the heartbeat interval
                    packets.append((event, data))
    return packets


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "text",
    [
        "I want to talk to a human",
        "human please",
        "Позовите оператора, пожалуйста",
        "Соедините с живым человеком",
    ],
)
async def test_an_explicit_request_hands_off_and_the_bot_falls_silent(
    chat: Any, fleet: Any, conversation_factory: Any, text: str
) -> None:
    async with chat.client() as client:
        cid = (await conversation_factory(client))["id"]
        await say(client, cid, "How do I add a custom domain?")
        turn = await say(client, cid, text)
        assert turn["owner"] == "human" and turn["handoff"]["handoff_id"].startswith("h_")
        assert turn["handoff"]["ticket_id"].startswith("tk_")
        assert turn["reply"]["provider"] is None
        start = fleet.calls("/internal/v1/handoffs")[-1]
        assert start["conversation_id"] == cid and start["create_ticket"] is True
        assert start["notify_chat"] is False
        assert [line["role"] for line in start["transcript"]] == ["user", "assistant", "user"]
        assert "asked for a human" in start["reason"]
        silent = await say(client, cid, "Hello? Anyone?")
        assert silent["reply"] is None and silent["owner"] == "human"
        assert fleet.calls("/internal/v1/handoffs/relay")[-1]["message_id"] == silent["user_message"]["id"]


@pytest.mark.asyncio
async def test_a_handoff_word_inside_a_real_question_does_not_escalate(
    chat: Any, conversation_factory: Any
) -> None:
    async with chat.client() as client:
        cid = (await conversation_factory(client))["id"]
        turn = await say(client, cid, "Does the build agent have a memory limit for my documentation builds?")
        assert turn["owner"] == "bot" and turn["handoff"] is None
        assert "memory limit of 7 GB" in turn["reply"]["text"]


@pytest.mark.asyncio
async def test_repeated_unsupported_answers_hand_off(
    chat: Any, fleet: Any, conversation_factory: Any
) -> None:
    async with chat.client() as client:
        cid = (await conversation_factory(client))["id"]
        first = await say(client, cid, "What is the capital of Peru?")
        assert first["reply"]["no_answer"] and first["owner"] == "bot"
        second = await say(client, cid, "Which wines pair with salmon?")
        assert second["owner"] == "human" and "2 answers in a row" in second["handoff"]["reason"]
        assert "connecting you with a person" in second["reply"]["text"]


@pytest.mark.asyncio
async def test_frustration_and_tenant_rules_hand_off(
    chat: Any, fleet: Any, conversation_factory: Any
) -> None:
    async with chat.client() as client:
        cid = (await conversation_factory(client))["id"]
        assert (await say(client, cid, "This bot is useless, seriously"))["owner"] == "human"
        settings = {
            "escalation": {
                "rules": [{"name": "legal", "pattern": r"\blawyer|суд\b", "reason": "legal threat"}]
            }
        }
        assert (await client.put("/internal/v1/assistant", json=settings)).status_code == 200
        cid2 = (await conversation_factory(client))["id"]
        turn = await say(client, cid2, "My lawyer will contact your company about the builds")
        assert turn["owner"] == "human" and turn["handoff"]["reason"] == "rule legal: legal threat"


@pytest.mark.asyncio
async def test_the_customer_handoff_endpoint(chat: Any, fleet: Any, conversation_factory: Any) -> None:
    async with chat.client() as client:
        cid = (await conversation_factory(client))["id"]
        info = (await client.post(f"/internal/v1/conversations/{cid}/handoff")).json()
        assert info["handoff_id"].startswith("h_")
        assert (await client.get(f"/internal/v1/conversations/{cid}")).json()["owner"] == "human"
        again = (await client.post(f"/internal/v1/conversations/{cid}/handoff")).json()
        assert again["handoff_id"] == info["handoff_id"]
        fleet.integrations_down = True
        cid2 = (await conversation_factory(client))["id"]
        down = await client.post(f"/internal/v1/conversations/{cid2}/handoff")
        assert down.status_code == 503 and down.json()["error"]["code"] == "upstream_unavailable"


@pytest.mark.asyncio
async def test_order_lookup_for_a_verified_customer_streams_a_tool_call(
    chat: Any, fleet: Any, conversation_factory: Any
) -> None:
    claims = {"X-End-User-Claims": encode_identity_claims({"email": "ada@example.com"})}
    async with chat.client(**VERIFIED, **claims) as client:
        cid = (await conversation_factory(client, end_user_id="ada"))["id"]
        assert (await client.get(f"/internal/v1/conversations/{cid}")).json()["verified"] is True
        packets = await sse(client, cid, "Where is my order A-1001?")
    kinds = [kind for kind, _ in packets]
    assert kinds[:2] == ["tool_call", "tool_call"] and kinds[-1] == "done"
    assert packets[0][1]["status"] == "started" and packets[1][1]["status"] == "ok"
    assert packets[1][1]["name"] == "get_order_status" and packets[1][1]["arguments"] == {
        "order_number": "A-1001"
    }
    reply = packets[-1][1]["result"]["reply"]
    assert "A-1001: shipped" in reply["text"] and "TRK123" in reply["text"]
    assert fleet.calls("/internal/v1/crm/customers/lookup") == [{"by": "email", "value": "ada@example.com"}]
    assert fleet.calls("/internal/v1/crm/orders/lookup") == [
        {"order_number": "A-1001", "customer_id": "cus_1"}
    ]
    async with chat.client(**VERIFIED) as client:
        await say(client, cid, "And order A-2002?")
        other = (await client.get(f"/internal/v1/conversations/{cid}")).json()
        assert "could not find order A-2002" in other["messages"][-1]["text"]
        assert other["profile"]["crm_id"] == "cus_1"  # remembered, so the next lookup goes by id
        assert fleet.calls("/internal/v1/crm/customers/lookup")[-1] == {"by": "id", "value": "cus_1"}


@pytest.mark.asyncio
async def test_personal_data_tools_refuse_an_unverified_customer(
    chat: Any, fleet: Any, conversation_factory: Any
) -> None:
    async with chat.client(**{"X-End-User-ID": "ada"}) as client:
        cid = (await conversation_factory(client, end_user_id="ada", verified=True))["id"]
        packets = await sse(client, cid, "What is the status of order A-1001?")
    # Not even offered: an unverified customer's turn binds no personal-data tool.
    assert [data for kind, data in packets if kind == "tool_call"] == []
    assert "sign in" in packets[-1][1]["result"]["reply"]["text"]
    assert fleet.calls("/internal/v1/crm/orders/lookup") == []
    assert fleet.calls("/internal/v1/crm/customers/lookup") == []


@pytest.mark.asyncio
async def test_retrieval_down_answers_without_the_knowledge_base(
    chat: Any, fleet: Any, conversation_factory: Any
) -> None:
    fleet.retrieval_down = True
    async with chat.client() as client:
        cid = (await conversation_factory(client))["id"]
        turn = await say(client, cid, "How do I add a custom domain?")
        assert turn["reply"]["no_answer"] and "knowledge base is unavailable" in turn["reply"]["text"]
        assert turn["reply"]["citations"] == []


@pytest.mark.asyncio
async def test_integrations_down_tells_the_customer(chat: Any, fleet: Any, conversation_factory: Any) -> None:
    fleet.integrations_down = True
    async with chat.client(**VERIFIED) as client:
        cid = (await conversation_factory(client, end_user_id="ada"))["id"]
        order = await say(client, cid, "Where is my order A-1001?")
        assert "cannot reach our account and order systems" in order["reply"]["text"]
        handoff = await say(client, cid, "I need a human")
        assert handoff["owner"] == "bot" and handoff["handoff"] is None
        assert "could not reach our support team" in handoff["reply"]["text"]


@pytest.mark.asyncio
async def test_inbound_messenger_messages_find_their_conversation_and_are_idempotent(
    chat: Any, fleet: Any
) -> None:
    async with chat.client() as client:
        body = {
            "channel": "telegram",
            "end_user_id": "tg:42",
            "external_key": "chat-42",
            "text": "How do I add a custom domain?",
            "idempotency_key": "tg:update:1",
            "profile": {"name": "Ivan"},
        }
        first = (await client.post("/internal/v1/inbound", json=body)).json()
        assert "CNAME" in first["reply"]["text"] or "Admin page" in first["reply"]["text"]
        duplicate = (await client.post("/internal/v1/inbound", json=body)).json()
        assert duplicate["reply"]["id"] == first["reply"]["id"]
        second = (
            await client.post(
                "/internal/v1/inbound",
                json={**body, "text": "What about the build time limit?", "idempotency_key": "tg:update:2"},
            )
        ).json()
        assert second["conversation_id"] == first["conversation_id"]
        conversation = (await client.get(f"/internal/v1/conversations/{first['conversation_id']}")).json()
        assert conversation["channel"] == "telegram" and conversation["external_key"] == "chat-42"
        assert conversation["profile"]["name"] == "Ivan" and len(conversation["messages"]) == 4
        listed = (await client.get("/internal/v1/conversations", params={"channel": "telegram"})).json()
        assert listed["total"] == 1
