"""A follow-up is searched as the standalone question the tenant's language model writes from the
conversation (LangChain's history-aware retriever pattern); without a model, or when it fails, the offline
query that borrows the earlier turn's words is searched."""

from __future__ import annotations

from typing import Any

import pytest

FIRST = "How do I add a custom domain?"
FOLLOW_UP = "And the SSL certificate for it?"
STANDALONE = "How long does the SSL certificate of a custom domain take to be issued?"


@pytest.fixture
def database_url(tmp_path: Any) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/chat.db"


async def _use_model(client: Any, llm: Any) -> None:
    response = await client.put(
        "/internal/v1/assistant",
        json={
            "providers": ["openai", "extractive"],
            "provider_configs": {
                "openai": {"base_url": f"{llm.url}/v1", "api_key": "sk-test", "model": "gpt-test"}
            },
        },
    )
    assert response.status_code == 200, response.text


@pytest.mark.asyncio
async def test_the_model_rewrites_a_follow_up_into_the_search_query(
    chat: Any, fleet: Any, llm: Any, conversation_factory: Any
) -> None:
    llm.script = [
        {"text": "Open Admin, then Domains [1]."},
        {"text": STANDALONE},
        {"text": "About an hour [1]."},
    ]
    async with chat.client() as client:
        await _use_model(client, llm)
        cid = (await conversation_factory(client))["id"]
        first = await client.post(f"/internal/v1/conversations/{cid}/messages", json={"text": FIRST})
        second = await client.post(f"/internal/v1/conversations/{cid}/messages", json={"text": FOLLOW_UP})
    assert first.status_code == second.status_code == 200, second.text
    queries = [body["query"] for body in fleet.calls("/internal/v1/search")]
    assert queries == [FIRST, STANDALONE]
    calls = [body for body, _ in llm.calls("/v1/chat/completions")]
    assert len(calls) == 3  # the first question needs no rewrite: it stands on its own
    rewrite = calls[1]["messages"]
    assert "standalone question" in rewrite[0]["content"] and "language" in rewrite[0]["content"]
    assert [(m["role"], m["content"]) for m in rewrite[1:]] == [
        ("user", FIRST),
        ("assistant", "Open Admin, then Domains [1]."),
        ("user", FOLLOW_UP),
    ]
    assert second.json()["reply"]["text"].startswith("About an hour")


@pytest.mark.asyncio
@pytest.mark.parametrize("failures", [1, 3])
async def test_a_failing_model_leaves_the_offline_follow_up_query(
    chat: Any, fleet: Any, llm: Any, conversation_factory: Any, failures: int
) -> None:
    """After CHAT_PROVIDER_BREAKER_FAIL_MAX (3) failures the model's breaker is open, and the model is not
    asked to rewrite follow-ups at all: each would wait on it in vain."""
    async with chat.client() as client:
        await _use_model(client, llm)
        llm.mode = "fail"
        cid = (await conversation_factory(client))["id"]
        for _ in range(failures):
            await client.post(f"/internal/v1/conversations/{cid}/messages", json={"text": FIRST})
        asked = len(llm.calls("/v1/chat/completions"))
        second = await client.post(f"/internal/v1/conversations/{cid}/messages", json={"text": FOLLOW_UP})
    assert second.status_code == 200, second.text
    query = fleet.calls("/internal/v1/search")[-1]["query"]
    assert query.startswith(FOLLOW_UP) and "domain" in query.lower()
    assert second.json()["reply"]["provider"] == "extractive"
    if failures == 3:
        assert len(llm.calls("/v1/chat/completions")) == asked
