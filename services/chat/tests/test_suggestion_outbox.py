"""Suggested curated answers are not lost when retrieval is down at the resolution: the resolution writes them
to the outbox, and they reach retrieval once it is back, also through a restart of chat in between; each
question reaches it once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

QUESTION = "Can I pay with cryptocurrency?"
REPLY = "Not yet: we accept bank cards and SBP."


async def _answered_by_operator(client: httpx.AsyncClient, conversation_factory: Any) -> str:
    """A conversation an operator took over: the customer asks, the operator answers, the bot returns."""
    cid: str = (await conversation_factory(client))["id"]
    taken = await client.put(
        f"/internal/v1/conversations/{cid}/owner",
        json={"owner": "human", "actor": "op-1", "reason": "claimed"},
    )
    assert taken.status_code == 200, taken.text
    asked = await client.post(f"/internal/v1/conversations/{cid}/messages", json={"text": QUESTION})
    assert asked.status_code in (200, 201), asked.text
    replied = await client.post(
        f"/internal/v1/conversations/{cid}/operator-messages",
        json={"text": REPLY, "operator_id": "op-1", "idempotency_key": f"op-{cid}"},
    )
    assert replied.status_code == 201, replied.text
    return cid


async def _resolve(client: httpx.AsyncClient, cid: str) -> None:
    resolved = await client.put(
        f"/internal/v1/conversations/{cid}/status", json={"status": "resolved", "actor": "op-1"}
    )
    assert resolved.status_code == 200, resolved.text


async def _until(condition: Callable[[], bool], seconds: float = 20.0) -> None:
    """Polls a condition the stand-in's handlers change (they run on this event loop)."""
    deadline = time.monotonic() + seconds
    for _ in range(int(seconds / 0.05)):
        if condition() or time.monotonic() > deadline:
            return
        await asyncio.sleep(0.05)


async def _wait_for(fleet: Any, count: int) -> list[dict[str, Any]]:
    await _until(lambda: len(fleet.suggestions) >= count)
    suggestions: list[dict[str, Any]] = fleet.suggestions
    return suggestions


def _attempts(fleet: Any) -> int:
    return len(fleet.calls("/internal/v1/curated/suggestions"))


@pytest.mark.asyncio
async def test_suggestions_wait_in_the_outbox_while_retrieval_is_down_and_arrive_after_a_restart(
    database_url: str, fleet: Any, chat_factory: Any, conversation_factory: Any
) -> None:
    retry = {"suggestion_retry_seconds": 0.2, "suggestion_retry_max_seconds": 0.5}
    first = await chat_factory(database_url, **retry)
    async with first.client() as client:
        cid = await _answered_by_operator(client, conversation_factory)
        fleet.retrieval_down = True
        await _resolve(client, cid)
        await _until(lambda: _attempts(fleet) >= 3)  # the first attempt and two retries
        assert _attempts(fleet) >= 3
        assert fleet.suggestions == []
        metrics = (await client.get("/metrics")).text
        assert 'switchboard_chat_curated_suggestions_total{outcome="retry"}' in metrics
    await first.stop()

    fleet.retrieval_down = False
    second = await chat_factory(database_url, **retry)  # another process on the same database
    arrived = await _wait_for(fleet, 1)
    assert [(s["conversation_id"], s["question"], s["answer"], s["reason"]) for s in arrived] == [
        (cid, QUESTION, REPLY, "handoff")
    ]
    # Delivered: the entry is gone, nothing is sent again.
    await asyncio.sleep(1.5)
    sent = _attempts(fleet)
    await asyncio.sleep(1.0)
    assert _attempts(fleet) == sent
    await second.stop()


@pytest.mark.asyncio
async def test_a_conversation_resolved_again_sends_its_new_answers_once(
    database_url: str, fleet: Any, chat_factory: Any, conversation_factory: Any
) -> None:
    chat = await chat_factory(database_url, suggestion_retry_seconds=0.2, suggestion_retry_max_seconds=0.5)
    async with chat.client() as client:
        cid = await _answered_by_operator(client, conversation_factory)
        await _resolve(client, cid)
        assert len(await _wait_for(fleet, 1)) == 1
        # The customer comes back; the same operator answers a new question; resolved again.
        taken = await client.put(
            f"/internal/v1/conversations/{cid}/owner",
            json={"owner": "human", "actor": "op-1", "reason": "claimed"},
        )
        assert taken.status_code == 200, taken.text
        await client.post(f"/internal/v1/conversations/{cid}/messages", json={"text": "And PayPal?"})
        await client.post(
            f"/internal/v1/conversations/{cid}/operator-messages",
            json={"text": "PayPal neither, sorry.", "operator_id": "op-1", "idempotency_key": "op-2"},
        )
        await _resolve(client, cid)
        arrived = await _wait_for(fleet, 2)
        assert [s["question"] for s in arrived] == [QUESTION, "And PayPal?"]
        await asyncio.sleep(1.0)
        assert len(fleet.suggestions) == 2
