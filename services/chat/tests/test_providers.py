"""Providers against local servers speaking the OpenAI, Anthropic and Gemini wire formats: streaming,
tool-call round trips, fallback before the first token, the per-provider breaker, heartbeats."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from switchboard_shared.deps import encode_identity_claims

VERIFIED = {"X-End-User-ID": "ada", "X-End-User-Verified": "1"}


async def configure(client: Any, providers: list[str], configs: dict[str, Any]) -> None:
    response = await client.put(
        "/internal/v1/assistant", json={"providers": providers, "provider_configs": configs}
    )
    assert response.status_code == 200, response.text


async def sse(client: Any, cid: str, text: str) -> list[tuple[float, str, dict[str, Any]]]:
    packets = []
    started = time.perf_counter()
    async with client.stream(
        "POST",
        f"/internal/v1/conversations/{cid}/messages",
        json={"text": text},
        headers={"Accept": "text/event-stream"},
    ) as response:
        assert response.status_code == 200
        event = None
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                packets.append((time.perf_counter() - started, str(event), orjson.loads(line[6:])))
    return packets


def without_heartbeats(
    packets: list[tuple[float, str, dict[str, Any]]],
) -> list[tuple[float, str, dict[str, Any]]]:
    return [packet for packet in packets if packet[1] != "heartbeat"]


@pytest.fixture
def database_url(tmp_path: Any) -> str:
    """Provider behaviour does not depend on the database: these tests run on SQLite only."""
    return f"sqlite+aiosqlite:///{tmp_path}/chat.db"


@pytest.mark.asyncio
async def test_anthropic_messages_stream_and_tool_round_trip(
    chat: Any, llm: Any, fleet: Any, conversation_factory: Any
) -> None:
    llm.script = [
        {"tool": "get_order_status", "args": {"order_number": "A-1001"}},
        {"text": "Your order A-1001 has shipped."},
    ]
    claims = {"X-End-User-Claims": encode_identity_claims({"email": "ada@example.com"})}
    async with chat.client(**VERIFIED, **claims) as client:
        await configure(
            client,
            ["anthropic"],
            {"anthropic": {"base_url": llm.url, "api_key": "sk-ant-test", "model": "claude-test"}},
        )
        cid = (await conversation_factory(client, end_user_id="ada"))["id"]
        packets = without_heartbeats(await sse(client, cid, "Where is my order A-1001?"))
    kinds = [kind for _, kind, _ in packets]
    assert kinds[:2] == ["tool_call", "tool_call"] and "token" in kinds and kinds[-1] == "done"
    reply = packets[-1][2]["result"]["reply"]
    assert reply["provider"] == "anthropic" and reply["text"] == "Your order A-1001 has shipped."
    calls = llm.calls("/v1/messages")
    assert len(calls) == 2
    first, headers = calls[0]
    # The SDK sends the key as x-api-key or, in newer releases, as a bearer token.
    assert "sk-ant-test" in (
        headers.get("x-api-key", ""),
        headers.get("authorization", "").removeprefix("Bearer "),
    )
    assert "anthropic-version" in headers
    assert first["model"] == "claude-test" and first["stream"] is True
    assert "Answer ONLY from the knowledge-base passages" in str(first["system"])
    assert {tool["name"] for tool in first["tools"]} == {
        "get_customer",
        "get_order_status",
        "create_ticket",
        "handoff_to_human",
    }
    assert first["tools"][1]["input_schema"]["properties"]["order_number"]["type"] == "string"
    second, _ = calls[1]
    result_block = second["messages"][-1]["content"][0]
    assert result_block["type"] == "tool_result" and result_block["tool_use_id"] == "toolu_1"
    assert "shipped" in str(result_block["content"])
    assert fleet.calls("/internal/v1/crm/orders/lookup") == [
        {"order_number": "A-1001", "customer_id": "cus_1"}
    ]


@pytest.mark.asyncio
async def test_google_stream_generate_content_and_function_call(
    chat: Any, llm: Any, fleet: Any, conversation_factory: Any
) -> None:
    llm.script = [
        {"tool": "handoff_to_human", "args": {"reason": "wants a refund exception"}},
        {"text": "I am passing you to a colleague."},
    ]
    async with chat.client() as client:
        await configure(
            client, ["google"], {"google": {"base_url": llm.url, "api_key": "g-key", "model": "gemini-test"}}
        )
        cid = (await conversation_factory(client))["id"]
        turn = (
            await client.post(
                f"/internal/v1/conversations/{cid}/messages",
                json={"text": "Can you make an exception on my refund?"},
            )
        ).json()
    assert turn["reply"]["provider"] == "google"
    assert turn["reply"]["text"].startswith("I am passing you to a colleague.")
    assert turn["owner"] == "human" and turn["handoff"]["reason"] == "wants a refund exception"
    calls = llm.calls("/v1beta/models/gemini-test:streamGenerateContent")
    assert len(calls) == 2
    first, headers = calls[0]
    assert headers.get("x-goog-api-key") == "g-key"
    # The passages come fenced as data in the customer's turn, before the question; never among the rules.
    customer_turn = first["contents"][-1]["parts"][0]["text"]
    assert customer_turn.startswith("<passages") and customer_turn.endswith(
        "Can you make an exception on my refund?"
    )
    system = first["systemInstruction"]["parts"][0]["text"]
    assert "Answer ONLY from the knowledge-base passages" in system and "<passage" not in system
    declared = {f["name"] for tool in first["tools"] for f in tool["functionDeclarations"]}
    assert "handoff_to_human" in declared
    second, _ = calls[1]
    response_part = second["contents"][-1]["parts"][0]
    assert response_part["functionResponse"]["name"] == "handoff_to_human"


@pytest.mark.asyncio
async def test_openai_tool_round_trip(chat: Any, llm: Any, fleet: Any, conversation_factory: Any) -> None:
    """A side-effecting tool the model calls is held until the customer confirms; their "yes" runs it."""
    llm.script = [
        {
            "tool": "create_ticket",
            "args": {"subject": "Broken build", "description": "Build fails since Monday"},
        },
        {"text": "Shall I open a ticket for your broken build?"},
    ]
    async with chat.client(**VERIFIED) as client:
        await configure(
            client,
            ["openai"],
            {"openai": {"base_url": f"{llm.url}/v1", "api_key": "sk-test", "model": "gpt-test"}},
        )
        cid = (await conversation_factory(client, end_user_id="ada"))["id"]
        turn = (
            await client.post(
                f"/internal/v1/conversations/{cid}/messages", json={"text": "My build is broken since Monday"}
            )
        ).json()
        assert turn["reply"]["provider"] == "openai" and "ticket" in turn["reply"]["text"]
        assert fleet.calls("/internal/v1/tickets") == []  # asked, not done
        confirmed = (
            await client.post(f"/internal/v1/conversations/{cid}/messages", json={"text": "Yes, please do"})
        ).json()
    assert confirmed["reply"]["provider"] is None and "opened a ticket" in confirmed["reply"]["text"]
    assert len(llm.calls("/v1/chat/completions")) == 2  # the confirmed action ran without the model
    calls = llm.calls("/v1/chat/completions")
    first, headers = calls[0]
    assert (
        headers["authorization"] == "Bearer sk-test"
        and first["model"] == "gpt-test"
        and first["stream"] is True
    )
    assert first["messages"][0]["role"] == "system"
    assert first["max_completion_tokens"] == 512 and "max_tokens" not in first  # OpenAI's current field
    tool_message = calls[1][0]["messages"][-1]
    assert tool_message["role"] == "tool" and tool_message["tool_call_id"] == "call_1"
    assert "confirmation" in tool_message["content"]
    ticket = fleet.calls("/internal/v1/tickets")[0]
    assert ticket["subject"] == "Broken build" and ticket["conversation_id"] == cid
    assert ticket["idempotency_key"].startswith(f"chat:{cid}:")


@pytest.mark.asyncio
async def test_a_failing_gemini_is_asked_once_per_turn(
    chat: Any, llm: Any, conversation_factory: Any
) -> None:
    """The Gemini SDK sends a failed request five times by default: a 500 must reach the fallback after one
    request, or every customer waits out five failures before the next provider answers."""
    llm.mode = "fail"
    async with chat.client() as client:
        await configure(
            client,
            ["google", "extractive"],
            {"google": {"base_url": llm.url, "api_key": "g-key", "model": "gemini-test"}},
        )
        cid = (await conversation_factory(client))["id"]
        turn = (
            await client.post(
                f"/internal/v1/conversations/{cid}/messages", json={"text": "What is the build memory limit?"}
            )
        ).json()
    assert turn["reply"]["provider"] == "extractive"
    assert len(llm.calls("/v1beta/models/gemini-test:streamGenerateContent")) == 1


@pytest.mark.asyncio
async def test_failures_fall_through_and_open_the_breaker(
    chat_factory: Any, database_url: str, llm: Any, fleet: Any, conversation_factory: Any
) -> None:
    chat = await chat_factory(database_url, provider_breaker_fail_max=2, provider_breaker_reset_seconds=60)
    llm.mode = "fail"
    async with chat.client() as client:
        await configure(
            client, ["openai-compatible", "extractive"], {"openai-compatible": {"base_url": f"{llm.url}/v1"}}
        )
        cid = (await conversation_factory(client))["id"]
        for _ in range(3):
            turn = (
                await client.post(
                    f"/internal/v1/conversations/{cid}/messages",
                    json={"text": "What is the build memory limit?"},
                )
            ).json()
            assert turn["reply"]["provider"] == "extractive" and "7 GB" in turn["reply"]["text"]
    assert len(llm.calls("/v1/chat/completions")) == 2  # the third turn skipped the open breaker
    body, _ = llm.calls("/v1/chat/completions")[0]
    assert body["max_tokens"] == body["max_completion_tokens"] == 512  # both fields for compatible servers
    await chat.stop()
    fallbacks = [e["properties"] for e in fleet.events_of("provider_fallback")]
    reasons = [f["error"] for f in fallbacks]
    assert reasons[2] == "circuit open" and "500" in reasons[0]
    assert (
        fallbacks[0]["from_provider"] == "openai-compatible" and fallbacks[0]["to_provider"] == "extractive"
    )


@pytest.mark.asyncio
async def test_a_provider_without_a_first_token_in_time_falls_through(
    chat: Any, llm: Any, conversation_factory: Any
) -> None:
    llm.mode = "slow"
    llm.delay = 3.0
    async with chat.client() as client:
        await configure(
            client,
            ["openai-compatible", "extractive"],
            {"openai-compatible": {"base_url": f"{llm.url}/v1", "timeout_seconds": 0.3}},
        )
        cid = (await conversation_factory(client))["id"]
        started = time.perf_counter()
        turn = (
            await client.post(
                f"/internal/v1/conversations/{cid}/messages", json={"text": "What is the build memory limit?"}
            )
        ).json()
        assert time.perf_counter() - started < 2.5
    assert turn["reply"]["provider"] == "extractive"


@pytest.mark.asyncio
async def test_a_provider_that_stalls_mid_answer_is_replaced_not_cut_off(
    chat_factory: Any, database_url: str, llm: Any, fleet: Any, conversation_factory: Any
) -> None:
    chat = await chat_factory(database_url)
    llm.mode = "stall"
    llm.delay = 5.0
    llm.script = [{"text": "Builds may use up to 7 GB of memory [2] and run 15 minutes."}] * 2
    async with chat.client() as client:
        await configure(
            client,
            ["openai-compatible", "extractive"],
            {"openai-compatible": {"base_url": f"{llm.url}/v1", "timeout_seconds": 0.5}},
        )
        cid = (await conversation_factory(client))["id"]
        started = time.perf_counter()
        packets = without_heartbeats(await sse(client, cid, "What is the build memory limit?"))
        assert time.perf_counter() - started < 4.0  # the silence, not the model's 5 s stall, decided
        kinds = [kind for _, kind, _ in packets]
        reset_at = kinds.index("reset")
        assert "token" in kinds[:reset_at]  # the model's first words went out, then were taken back
        assert "token" in kinds[reset_at:] and kinds[-1] == "done"
        result = packets[-1][2]["result"]
        answer = result["reply"]["text"]
        assert result["reply"]["provider"] == "extractive" and "7 GB" in answer
        assert "Builds may " not in answer  # nothing of the abandoned answer is kept
        after_reset = "".join(p["text"] for _, kind, p in packets[reset_at:] if kind == "token")
        assert after_reset.strip() == answer.strip()
        # The JSON answer is the replacement too, and the stored message matches it.
        turn = (
            await client.post(
                f"/internal/v1/conversations/{cid}/messages", json={"text": "And the build time limit?"}
            )
        ).json()
        assert turn["reply"]["provider"] == "extractive"
        stored = (await client.get(f"/internal/v1/conversations/{cid}")).json()
    await chat.stop()  # flushes the analytics buffer
    assistant_texts = [m["text"] for m in stored["messages"] if m["role"] == "assistant"]
    assert answer in assistant_texts and not any("Builds may " in text for text in assistant_texts)
    fallbacks = [e["properties"] for e in fleet.events_of("provider_fallback")]
    assert any("stalled mid-answer" in f["error"] for f in fallbacks), fallbacks


@pytest.mark.asyncio
async def test_a_model_that_echoes_its_prompt_is_replaced_and_the_customer_never_reads_the_prompt(
    chat_factory: Any, database_url: str, llm: Any, fleet: Any, conversation_factory: Any
) -> None:
    chat = await chat_factory(database_url)
    llm.mode = "echo"
    async with chat.client() as client:
        await configure(
            client, ["openai-compatible", "extractive"], {"openai-compatible": {"base_url": f"{llm.url}/v1"}}
        )
        cid = (await conversation_factory(client))["id"]
        packets = without_heartbeats(await sse(client, cid, "What is the build memory limit?"))
        kinds = [kind for _, kind, _ in packets]
        assert "reset" in kinds and kinds[-1] == "done"
        answer = packets[-1][2]["result"]["reply"]
        assert answer["provider"] == "extractive" and "7 GB" in answer["text"]
        assert "<passage" not in answer["text"] and "untrusted" not in answer["text"]
        after_reset = "".join(p["text"] for _, kind, p in packets[kinds.index("reset") :] if kind == "token")
        assert "<passage" not in after_reset
        turn = (
            await client.post(
                f"/internal/v1/conversations/{cid}/messages", json={"text": "And the time limit?"}
            )
        ).json()
        assert turn["reply"]["provider"] == "extractive" and "<passage" not in turn["reply"]["text"]
    await chat.stop()
    fallbacks = [e["properties"] for e in fleet.events_of("provider_fallback")]
    assert any(f["error"] == "echoed its prompt" for f in fallbacks), fallbacks


@pytest.mark.asyncio
async def test_stream_sends_tokens_as_generated_with_heartbeats(
    chat_factory: Any, database_url: str, llm: Any, conversation_factory: Any
) -> None:
    chat = await chat_factory(database_url, heartbeat_seconds=0.1)
    llm.token_gap = 0.15
    llm.script = [{"text": "Builds may use up to 7 GB of memory [2] and run 15 minutes."}]
    async with chat.client() as client:
        await configure(client, ["openai-compatible"], {"openai-compatible": {"base_url": f"{llm.url}/v1"}})
        cid = (await conversation_factory(client))["id"]
        packets = await sse(client, cid, "What is the build memory limit?")
    kinds = [kind for _, kind, _ in packets]
    first_token = next(at for at, kind, _ in packets if kind == "token")
    done_at = packets[-1][0]
    assert kinds[-1] == "done" and "heartbeat" in kinds and "citation" in kinds
    assert done_at - first_token > 1.0  # tokens arrived while the model was still generating
    result = packets[-1][2]["result"]
    assert result["reply"]["text"] == "Builds may use up to 7 GB of memory [2] and run 15 minutes."
    assert [c["index"] for c in result["reply"]["citations"]] == [2]
    assert result["latency"]["generation_ms"] > 1000
