"""Two chat replicas (real processes) sharing PostgreSQL and Redis keep one conversation's messages in
order; a Redis outage falls back to the database and loses nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from switchboard_shared.testing.processes import ServiceProcess

INTERNAL_TOKEN = "chat-test-internal-token"
HEADERS = {"X-Internal-Token": INTERNAL_TOKEN, "X-Tenant-ID": "t-acme"}


@pytest.mark.e2e
@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.asyncio
async def test_concurrent_messages_to_two_replicas_are_processed_one_at_a_time(
    postgres_url: str, redis_url: str, fleet: Any
) -> None:
    env = {
        "CHAT_DATABASE_URL": postgres_url,
        "SWITCHBOARD_REDIS_URL": redis_url,
        "SWITCHBOARD_RETRIEVAL_URL": fleet.url,
        "SWITCHBOARD_INTEGRATIONS_URL": fleet.url,
        "SWITCHBOARD_ANALYTICS_URL": fleet.url,
        "SWITCHBOARD_ENVIRONMENT": "test",
        "SWITCHBOARD_INTERNAL_TOKEN": INTERNAL_TOKEN,
    }
    first = ServiceProcess("switchboard_chat", env, name="chat-a")
    second = ServiceProcess("switchboard_chat", env, name="chat-b")
    await asyncio.to_thread(first.start)
    await asyncio.to_thread(second.start)
    try:
        async with httpx.AsyncClient(headers=HEADERS, timeout=120) as client:
            created = await client.post(f"{first.url}/internal/v1/conversations", json={"end_user_id": "u1"})
            cid = created.json()["id"]
            replicas = [first.url, second.url]

            async def ask(k: int) -> httpx.Response:
                return await client.post(
                    f"{replicas[k % 2]}/internal/v1/conversations/{cid}/messages",
                    json={"text": f"What is the probe {k} answer?"},
                )

            responses = await asyncio.gather(*(ask(k) for k in range(8)))
            assert [r.status_code for r in responses] == [200] * 8
            messages = (await client.get(f"{second.url}/internal/v1/conversations/{cid}")).json()["messages"]
    finally:
        await asyncio.to_thread(first.stop)
        await asyncio.to_thread(second.stop)
    assert len(messages) == 16
    asked = []
    for question, answer in zip(messages[0::2], messages[1::2], strict=True):
        assert question["role"] == "user" and answer["role"] == "assistant"
        k = question["text"].split("probe ")[1].split(" ")[0]
        assert f"probe {k} answer" in answer["text"]  # every answer directly follows its own question
        asked.append(int(k))
    assert sorted(asked) == list(range(8))


@pytest.mark.redis
@pytest.mark.asyncio
async def test_a_redis_outage_falls_back_to_the_database(
    chat_factory: Any, tmp_path: Any, redis_url: str, redis_server: Any, conversation_factory: Any
) -> None:
    chat = await chat_factory(f"sqlite+aiosqlite:///{tmp_path}/chat.db", redis_url=redis_url)
    async with chat.client() as client:
        cid = (await conversation_factory(client))["id"]
        assert (
            await client.post(
                f"/internal/v1/conversations/{cid}/messages", json={"text": "What is the probe 1 answer?"}
            )
        ).status_code == 200
        redis_server.stop()
        try:
            during = await client.post(
                f"/internal/v1/conversations/{cid}/messages", json={"text": "What is the probe 2 answer?"}
            )
            assert during.status_code == 200 and "probe 2 answer" in during.json()["reply"]["text"]
        finally:
            redis_server.start()
        # The cached window predates the outage; its sequence number no longer matches, so the DB wins.
        after = await client.post(
            f"/internal/v1/conversations/{cid}/messages", json={"text": "And the probe 3 answer too?"}
        )
        assert after.status_code == 200
        messages = (await client.get(f"/internal/v1/conversations/{cid}")).json()["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"] * 3
    assert "probe 3 answer" in messages[-1]["text"]
