"""``/v1/chat/completions`` and ``/v1/models`` through the official ``openai`` client, streaming and not."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import orjson
import pytest

from switchboard_shared.tokens import estimate_tokens

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
async def test_a_thread_is_its_end_users_own_and_chat_keeps_it(env: Env) -> None:
    """The gateway keeps no thread state: chat resumes the conversation of the thread's key, which is the
    named end user's own (another user's thread of the same name is another conversation)."""
    async with openai_client(env) as client:
        ids = []
        for user in ("ann", "ann", "ben", None, None):
            completion = await client.chat.completions.create(
                model="m",
                messages=[{"role": "user", "content": "hi"}],
                metadata={"thread": "t-1"},
                **({"user": user} if user else {}),
            )
            ids.append(completion.model_extra["switchboard"]["conversation_id"])  # type: ignore[index]
    assert ids[0] == ids[1] and ids[3] == ids[4]
    assert len({ids[0], ids[2], ids[3]}) == 3
    keys = {c["id"]: c["external_key"] for c in env.upstream.conversations.values()}
    assert keys == {ids[0]: "thread:api:ann/t-1", ids[2]: "thread:api:ben/t-1", ids[3]: "thread:t-1"}
    opened = [r for r in env.upstream.received if r.path == "/internal/v1/conversations"]
    assert all(orjson.loads(r.body)["resume"] for r in opened)


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


def assert_openai_error(error: openai.APIStatusError, *, param: str | None, code: str) -> None:
    body = error.body
    assert isinstance(body, dict), body
    assert set(body) >= {"message", "type", "param", "code"}, body
    assert body["param"] == param and body["code"] == code, body
    assert body["message"] and body["type"] == "invalid_request_error", body


@pytest.mark.asyncio
async def test_errors_in_openai_shape(env: Env) -> None:
    async with openai_client(env) as client:
        with pytest.raises(openai.BadRequestError) as last_not_user:
            await client.chat.completions.create(model="m", messages=[{"role": "assistant", "content": "hi"}])
        assert_openai_error(last_not_user.value, param="messages[0].role", code="invalid_value")
        with pytest.raises(openai.BadRequestError) as bad_role:
            await client.chat.completions.create(model="m", messages=[{"role": "robot", "content": "hi"}])  # type: ignore[misc,list-item]
        assert_openai_error(bad_role.value, param="messages[0].role", code="invalid_value")
        with pytest.raises(openai.BadRequestError) as no_messages:
            await client.chat.completions.create(model="m", messages=[])
        assert_openai_error(no_messages.value, param="messages", code="invalid_value")
        with pytest.raises(openai.BadRequestError) as two_choices:
            await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], n=2)
        assert_openai_error(two_choices.value, param="n", code="invalid_value")
        with pytest.raises(openai.NotFoundError) as missing:
            await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}], metadata={"conversation_id": "nope"}
            )
        assert isinstance(missing.value.body, dict) and missing.value.body["type"] == "invalid_request_error"
    async with openai_client(env, key="sk_" + "x" * 40) as client:
        with pytest.raises(openai.AuthenticationError) as unauthorized:
            await client.models.list()
        assert isinstance(unauthorized.value.body, dict)
        assert (
            unauthorized.value.body["type"] == "authentication_error" and "param" in unauthorized.value.body
        )
    async with client_for(env.app) as http:
        missing_model = await http.post(
            "/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "hi"}]},
            headers=env.server(),
        )
        not_json = await http.post(
            "/v1/chat/completions",
            content=b"{not json",
            headers={**env.server(), "Content-Type": "application/json"},
        )
        elsewhere = await http.get("/v1/kbs", headers={"Authorization": "Bearer sk_" + "x" * 40})
    assert missing_model.status_code == 400
    assert missing_model.json()["error"]["param"] == "model"
    assert missing_model.json()["error"]["code"] == "missing_required_parameter"
    assert not_json.status_code == 400 and not_json.json()["error"]["code"] == "invalid_json"
    # The rest of the fleet keeps its one error shape.
    assert (
        elsewhere.status_code == 401
        and "type" not in elsewhere.json()["error"]
        and "request_id" in elsewhere.json()["error"]
    )


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("extra", "param"),
    [
        (
            {
                "tools": [
                    {
                        "type": "function",
                        "function": {"name": "get_weather", "parameters": {"type": "object"}},
                    }
                ]
            },
            "tools",
        ),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"functions": [{"name": "f", "parameters": {"type": "object"}}]}, "functions"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": {"type": "object"}},
                }
            },
            "response_format",
        ),
    ],
)
async def test_tools_and_structured_output_are_refused_with_400(
    env: Env, extra: dict[str, object], param: str
) -> None:
    async with openai_client(env) as client:
        for stream in (False, True):
            with pytest.raises(openai.BadRequestError) as refused:
                await client.chat.completions.create(
                    model="m",
                    messages=[{"role": "user", "content": "What's the weather?"}],
                    stream=stream,
                    extra_body=extra,
                )
            assert_openai_error(refused.value, param=param, code="unsupported_parameter")
            assert "not supported" in refused.value.message
        # Harmless values are accepted: no tool, free text.
        accepted = await client.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "hi"}],
            tools=[],
            tool_choice="none",
            response_format={"type": "text"},
        )
    assert accepted.choices[0].message.content
    assert len([r for r in env.upstream.received if r.path.endswith("/messages")]) == 1  # refused: never sent


@pytest.mark.asyncio
async def test_tool_messages_are_refused(env: Env) -> None:
    async with openai_client(env) as client:
        with pytest.raises(openai.BadRequestError) as refused:
            await client.chat.completions.create(
                model="m",
                messages=[
                    {"role": "user", "content": "weather?"},
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{}"}}
                        ],
                    },
                    {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
                    {"role": "user", "content": "so?"},
                ],
            )
    assert_openai_error(refused.value, param="messages[1]", code="unsupported_parameter")


@pytest.mark.asyncio
async def test_stateless_messages_reach_chat_as_history(env: Env) -> None:
    """Without a conversation id or user, the request's own transcript is the conversation's history."""
    messages: list[dict[str, str]] = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "How much is courier delivery?"},
        {"role": "assistant", "content": "Courier delivery costs 349 RUB [1]."},
        {"role": "user", "content": "And how long does it take?"},
    ]
    async with openai_client(env) as client:
        completion = await client.chat.completions.create(model="m", messages=messages)  # type: ignore[arg-type]
        stream = await client.chat.completions.create(
            model="m",
            messages=messages,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [c async for c in stream]
    turns = [orjson.loads(r.body) for r in env.upstream.received if r.path.endswith("/messages")]
    assert len(turns) == 2
    for turn in turns:
        assert turn == {
            "text": "And how long does it take?",
            "history": [
                {"role": "user", "text": "How much is courier delivery?"},
                {"role": "assistant", "text": "Courier delivery costs 349 RUB [1]."},
            ],
        }
    created = list(env.upstream.conversations.values())
    assert len(created) == 2 and all(c["channel"] == "api" for c in created)
    # Usage is chat's for the turn: the question and the earlier turns it was sent (not the system prompt,
    # which chat never sees).
    whole_prompt = sum(estimate_tokens(m["content"]) for m in messages if m["role"] != "system")
    assert completion.usage is not None and completion.usage.prompt_tokens == whole_prompt
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == whole_prompt
    assert completion.usage.total_tokens == whole_prompt + completion.usage.completion_tokens


@pytest.mark.asyncio
async def test_kept_conversations_do_not_replay_messages(env: Env) -> None:
    """With a conversation id, thread or user, chat keeps the history: the transcript is not sent again."""
    messages: list[dict[str, str]] = [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "answer"},
        {"role": "user", "content": "second"},
    ]
    async with openai_client(env) as client:
        kept = await client.chat.completions.create(model="m", messages=messages, user="carol")  # type: ignore[arg-type]
        conversation_id = kept.model_extra["switchboard"]["conversation_id"]  # type: ignore[index]
        await client.chat.completions.create(
            model="m",
            messages=messages,  # type: ignore[arg-type]
            metadata={"conversation_id": conversation_id},
        )
    turns = [orjson.loads(r.body) for r in env.upstream.received if r.path.endswith("/messages")]
    assert turns == [{"text": "second"}, {"text": "second"}]


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
