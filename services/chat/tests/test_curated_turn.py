"""A message retrieval matched to a curated answer is answered with it as it stands: no provider runs, the
stream says it is curated, and the stored answer and its analytics event name ``curated`` as the provider."""

from __future__ import annotations

from typing import Any

import pytest

from switchboard_shared.contracts.chat import CuratedPacket, DonePacket, TokenPacket, decode_sse

QUESTION = "Как вернуть товар, если он не подошёл?"
MATCH = {
    "answer_id": "ca_1",
    "question": "How do I return an item?",
    "answer": "Товар можно вернуть в течение 30 дней после доставки.",
    "language": "ru",
    "score": 0.93,
    "threshold": 0.88,
}


@pytest.mark.asyncio
async def test_a_curated_match_is_the_answer_and_no_provider_runs(
    chat: Any, fleet: Any, conversation_factory: Any
) -> None:
    fleet.curated[QUESTION] = MATCH
    async with chat.client() as client:
        cid = (await conversation_factory(client, end_user_id="alice"))["id"]
        async with client.stream(
            "POST",
            f"/internal/v1/conversations/{cid}/messages",
            json={"text": QUESTION},
            headers={"Accept": "text/event-stream"},
        ) as response:
            assert response.status_code == 200
            lines = [line async for line in response.aiter_lines()]
        packets = [p for p in decode_sse(lines) if p.type != "heartbeat"]
        assert isinstance(packets[0], CuratedPacket)
        assert (packets[0].answer_id, packets[0].language, packets[0].score) == ("ca_1", "ru", 0.93)
        assert [p.text for p in packets if isinstance(p, TokenPacket)] == [MATCH["answer"]]
        done = packets[-1]
        assert isinstance(done, DonePacket) and done.result.reply is not None
        assert done.result.reply.text == MATCH["answer"] and done.result.reply.provider == "curated"
        assert done.result.reply.citations == [] and done.result.latency.generation_ms == 0.0

        # Every customer turn asks retrieval for curated answers; a message without a match is answered as before.
        other = await client.post(
            f"/internal/v1/conversations/{cid}/messages", json={"text": "How do I add a custom domain?"}
        )
        assert other.status_code == 200 and other.json()["reply"]["provider"] == "extractive"
        assert all(body["curated"] is True for body in fleet.calls("/internal/v1/search"))
        stored = (await client.get(f"/internal/v1/conversations/{cid}")).json()["messages"]
        assert [m["provider"] for m in stored if m["role"] == "assistant"] == ["curated", "extractive"]
    await chat.stop()  # flushes the analytics buffer
    answers = [e["properties"] for e in fleet.events_of("answer_sent")]
    assert answers[0]["provider"] == "curated" and answers[0]["no_answer"] is False
    assert answers[1]["provider"] == "extractive"
