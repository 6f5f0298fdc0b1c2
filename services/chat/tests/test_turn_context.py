"""The passages an answer was given are shown to operators and services (evaluation), never to end users."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.mark.asyncio
async def test_services_see_the_answers_passages_and_end_users_do_not(
    chat: Any, conversation_factory: Any
) -> None:
    question = {"text": "How do I add a custom domain?"}
    async with chat.client() as client:
        cid = (await conversation_factory(client, end_user_id="alice"))["id"]
        turn = (await client.post(f"/internal/v1/conversations/{cid}/messages", json=question)).json()
    context = turn["context"]
    assert context and [p["index"] for p in context] == list(range(1, len(context) + 1))
    cited = turn["reply"]["citations"][0]
    assert any(p["chunk_id"] == cited["chunk_id"] and "CNAME" in p["text"] for p in context)

    async with chat.client(**{"X-End-User-ID": "alice"}) as alice:
        own = (await alice.post(f"/internal/v1/conversations/{cid}/messages", json=question)).json()
    assert own["reply"]["text"] and own["context"] is None and own["support"] is None
