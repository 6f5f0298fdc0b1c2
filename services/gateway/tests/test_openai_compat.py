"""``/v1/chat/completions`` and ``/v1/models`` through the official ``openai`` client, streaming and not."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest

from .conftest import Env, FakeUpstream, client_for, gateway_env
from .upstream_server import CITATION, REPLY_TOKENS


def openai_client(env: Env, key: str | None = None) -> openai.AsyncOpenAI:
    http = client_for(env.app)
    return openai.AsyncOpenAI(
        base_url="http://gateway.test/v1", api_key=key or env.server_key, http_client=http, max_retries=0
    )


@pytest.mark.asyncio
async def test_models(env: Env) -> None:
    async with openai_client(env) as client:
        models = await client.models.list()
        assert [m.id for m in models.data] == ["switchboard-assistant"]
        assert (await client.models.retrieve("switchboard-assistant")).owned_by == "switchboard"


@pytest.mark.asyncio
async def test_completion_not_streamed(env: Env) -> None:
    async with openai_client(env) as client:
        completion = await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[
                {"role": "system", "content": "ignored"},
                {"role": "user", "content": "How do refunds work?"},
            ],
        )
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-4o-mini"
    assert completion.choices[0].message.content == "".join(REPLY_TOKENS)
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens > 0
    extension = completion.model_extra["switchboard"]  # type: ignore[index]
    assert extension["citations"][0]["url"] == CITATION["url"]
    assert extension["conversation_id"] in env.upstream.conversations
    sent = env.upstream.last("/internal/v1/conversations/")
    assert sent.headers["X-Tenant-ID"] == "acme"
    assert sent.body == b'{"text":"How do refunds work?"}'


@pytest.mark.asyncio
async def test_completion_streamed(env: Env) -> None:
    async with openai_client(env) as client:
        stream = await client.chat.completions.create(
            model="switchboard-assistant",
            messages=[{"role": "user", "content": [{"type": "text", "text": "Refunds?"}]}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "".join(REPLY_TOKENS)
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason == "stop"]
    assert len(finals) == 1
    extension = finals[0].model_extra["switchboard"]  # type: ignore[index]
    assert extension["citations"][0]["chunk_id"] == "c1"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 10
    assert "text/event-stream" in env.upstream.last("/internal/v1/conversations/").headers["Accept"]


@pytest.mark.asyncio
async def test_user_keeps_one_conversation_and_stateless_does_not(env: Env) -> None:
    async with openai_client(env) as client:
        for _ in range(2):
            await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}], user="alice"
            )
        assert len(env.upstream.conversations) == 1
        conversation = next(iter(env.upstream.conversations.values()))
        assert conversation["end_user_id"] == "api:alice" and conversation["channel"] == "api"
        await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        assert len(env.upstream.conversations) == 3
        chosen = await client.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "hi"}],
            metadata={"conversation_id": conversation["id"]},
        )
        assert chosen.model_extra["switchboard"]["conversation_id"] == conversation["id"]  # type: ignore[index]


@pytest.mark.asyncio
async def test_kept_conversation_that_vanished_is_replaced(env: Env) -> None:
    async with openai_client(env) as client:
        await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], user="bob"
        )
        env.upstream.conversations.clear()
        again = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], user="bob", stream=False
        )
        assert again.model_extra["switchboard"]["conversation_id"] in env.upstream.conversations  # type: ignore[index]


@pytest.mark.asyncio
async def test_errors_in_openai_shape(env: Env) -> None:
    async with openai_client(env) as client:
        with pytest.raises(openai.UnprocessableEntityError):
            await client.chat.completions.create(model="m", messages=[{"role": "assistant", "content": "hi"}])
        with pytest.raises(openai.NotFoundError):
            await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}], metadata={"conversation_id": "nope"}
            )
    async with openai_client(env, key="sk_" + "x" * 40) as client:
        with pytest.raises(openai.AuthenticationError):
            await client.models.list()


@pytest.mark.asyncio
async def test_chat_down_gives_503(env: Env) -> None:
    await env.upstream.stop()
    async with httpx.AsyncClient(
        transport=client_for(env.app)._transport, base_url="http://gateway.test"
    ) as http:
        response = await http.post(
            "/v1/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
            headers=env.server(),
        )
    assert response.status_code == 503
    assert response.json()["error"]["request_id"]


@pytest.mark.asyncio
async def test_threads_and_keys_on_both_backends(
    database_url: str, upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with gateway_env(database_url, upstream, tmp_path) as env, openai_client(env) as client:
        first = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], metadata={"thread": "t-1"}
        )
        second = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "again"}], metadata={"thread": "t-1"}
        )
        extension = "switchboard"
        assert (
            first.model_extra[extension]["conversation_id"]
            == second.model_extra[extension]["conversation_id"]
        )  # type: ignore[index]
        assert len(upstream.conversations) == 1
