"""Earlier turns sent with a message (``PostMessage.history``): a stateless client's own transcript is the
context of the search and the answer, and is not stored."""

from __future__ import annotations

from typing import Any

import pytest

from switchboard_shared.tokens import estimate_tokens

EARLIER = [
    {"role": "user", "text": "How do I add a custom domain?"},
    {"role": "assistant", "text": "Open the project's Admin page and choose Domains [1]."},
]
FOLLOW_UP = "And the SSL certificate for it?"


@pytest.fixture
def database_url(tmp_path: Any) -> str:
    """The earlier turns never touch storage differently per backend: SQLite only."""
    return f"sqlite+aiosqlite:///{tmp_path}/chat.db"


@pytest.mark.asyncio
async def test_earlier_turns_drive_the_search_and_the_answer_but_are_not_stored(
    chat: Any, fleet: Any, conversation_factory: Any
) -> None:
    follow_up = FOLLOW_UP
    async with chat.client() as client:
        alone = (await conversation_factory(client))["id"]
        without = await client.post(f"/internal/v1/conversations/{alone}/messages", json={"text": follow_up})
        cid = (await conversation_factory(client))["id"]
        turn = await client.post(
            f"/internal/v1/conversations/{cid}/messages", json={"text": follow_up, "history": EARLIER}
        )
        assert turn.status_code == 200, turn.text
        stored = (await client.get(f"/internal/v1/conversations/{cid}")).json()["messages"]
    queries = [body["query"] for body in fleet.calls("/internal/v1/search")]
    assert "domain" not in queries[0].lower()  # alone, the follow-up has nothing to borrow from
    assert "domain" in queries[1].lower()  # with its earlier turns it is searched in context
    reply = turn.json()["reply"]
    assert "SSL certificates for custom domains" in reply["text"] and not reply["no_answer"], reply["text"]
    assert without.status_code == 200
    assert [(m["role"], m["text"]) for m in stored] == [("user", follow_up), ("assistant", reply["text"])]
    # The turn's usage counts the earlier turns sent with it, the message and the answer, by the one estimate.
    usage, alone_usage = turn.json()["usage"], without.json()["usage"]
    earlier = sum(estimate_tokens(e["text"]) for e in EARLIER)
    assert (
        usage["prompt_tokens"]
        == estimate_tokens(follow_up) + earlier
        == alone_usage["prompt_tokens"] + earlier
    )
    assert usage["completion_tokens"] == estimate_tokens(reply["text"]) > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


@pytest.mark.asyncio
async def test_earlier_turns_reach_the_model_before_the_question(
    chat: Any, llm: Any, conversation_factory: Any
) -> None:
    async with chat.client() as client:
        response = await client.put(
            "/internal/v1/assistant",
            json={
                "providers": ["openai"],
                "provider_configs": {
                    "openai": {"base_url": f"{llm.url}/v1", "api_key": "sk-test", "model": "gpt-test"}
                },
            },
        )
        assert response.status_code == 200, response.text
        cid = (await conversation_factory(client))["id"]
        turn = await client.post(
            f"/internal/v1/conversations/{cid}/messages",
            json={"text": FOLLOW_UP, "history": EARLIER},
        )
        assert turn.status_code == 200, turn.text
    body, _ = llm.calls("/v1/chat/completions")[0]
    assert [(m["role"], m["content"]) for m in body["messages"][1:]] == [
        ("user", EARLIER[0]["text"]),
        ("assistant", EARLIER[1]["text"]),
        ("user", FOLLOW_UP),
    ]


@pytest.mark.asyncio
async def test_a_widget_cannot_send_earlier_turns(chat: Any, conversation_factory: Any) -> None:
    async with chat.client() as client:
        cid = (await conversation_factory(client))["id"]
        refused = await client.post(
            f"/internal/v1/conversations/{cid}/messages",
            json={"text": "hi", "history": EARLIER},
            headers={"X-Key-Scope": "widget"},
        )
        too_many = await client.post(
            f"/internal/v1/conversations/{cid}/messages",
            json={"text": "hi", "history": [EARLIER[0]] * 101},
        )
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert too_many.status_code == 422
