"""The OpenAI-compatible API through the official ``openai`` SDK and LangChain's ``ChatOpenAI``, against the
real fleet and the demo knowledge base: stateless multi-turn conversations (only ``messages``, no
conversation id or ``user``) are answered in context, streaming and not; refusals are ``BadRequestError``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from .conftest import Fleet, ingest_markdown, tenant_server_key

DEMO_KB = Path(__file__).resolve().parents[2] / "demo" / "kb" / "en"
# Turn two asks about pickup points; turn three only makes sense after it. Alone, "how many days" is first
# answered with something else (the return period …); after turn two, with how long a pickup point keeps a
# parcel (7 days).
TURNS = [
    "Which payment methods do you accept?",
    "How long does the pickup point keep my parcel?",
    "How many days do I have?",
]


@pytest.fixture(scope="module")
def demo_tenant(fleet: Fleet) -> Iterator[tuple[str, str]]:
    """A tenant of its own with the demo knowledge base (English) ingested through the public API."""
    fleet.require("chat", "retrieval")
    key = tenant_server_key(fleet.gateway, "openai-sdk")
    articles = {path.name: path.read_text() for path in sorted(DEMO_KB.glob("*.md"))}
    with httpx.Client(base_url=fleet.gateway, headers={"Authorization": f"Bearer {key}"}, timeout=60) as api:
        ingest_markdown(api, articles, timeout=180)
    yield fleet.gateway, key


def sdk(demo_tenant: tuple[str, str]) -> openai.OpenAI:
    gateway, key = demo_tenant
    return openai.OpenAI(base_url=f"{gateway}/v1", api_key=key, max_retries=0, timeout=120)


def titles(extension: dict[str, Any]) -> set[str]:
    return {citation["title"] for citation in extension["citations"]}


def first_sentence(answer: str) -> str:
    return answer.split("[", 1)[0]


def assert_in_context(answer: str, extension: dict[str, Any] | None = None) -> None:
    assert "7 days" in first_sentence(answer) and "pickup point" in first_sentence(answer).lower(), answer
    if extension is not None:
        assert "Delivery" in titles(extension), extension["citations"]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_three_turns_with_only_messages_answer_the_follow_up_in_context(
    demo_tenant: tuple[str, str], stream: bool
) -> None:
    client = sdk(demo_tenant)
    messages: list[Any] = []
    conversations: set[str] = set()
    for question in TURNS:
        messages.append({"role": "user", "content": question})
        if stream:
            chunks = list(
                client.chat.completions.create(
                    model="switchboard-assistant",
                    messages=messages,
                    stream=True,
                    stream_options={"include_usage": True},
                )
            )
            answer = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            final = next(c for c in chunks if c.choices and c.choices[0].finish_reason == "stop")
            extension = (final.model_extra or {})["switchboard"]
            usage = chunks[-1].usage
        else:
            completion = client.chat.completions.create(model="switchboard-assistant", messages=messages)
            answer = completion.choices[0].message.content or ""
            extension = (completion.model_extra or {})["switchboard"]
            usage = completion.usage
        assert answer.strip()
        assert usage is not None
        # The whole prompt counts: every message sent, not only the question.
        assert usage.prompt_tokens >= sum(len(str(m["content"])) for m in messages) // 4
        conversations.add(extension["conversation_id"])
        messages.append({"role": "assistant", "content": answer})
    assert_in_context(answer, extension)
    assert len(conversations) == 3  # stateless: nothing kept between calls, the transcript is the context

    alone = client.chat.completions.create(
        model="switchboard-assistant", messages=[{"role": "user", "content": TURNS[-1]}]
    )
    assert "pickup point" not in first_sentence(alone.choices[0].message.content or "").lower(), alone


@pytest.mark.parametrize("stream", [False, True])
def test_a_user_or_thread_sends_only_the_new_question_and_chat_keeps_the_history(
    demo_tenant: tuple[str, str], stream: bool
) -> None:
    """``user`` and ``metadata.thread`` continue the conversation chat keeps for them: each call sends only
    the new question, the follow-up is answered in context, and every call lands in one conversation."""
    client = sdk(demo_tenant)
    for keep in ({"user": f"bob-{stream}"}, {"metadata": {"thread": f"order-help-{stream}"}}):
        conversations: set[str] = set()
        for question in TURNS:
            messages: Any = [{"role": "user", "content": question}]
            if stream:
                chunks = list(
                    client.chat.completions.create(
                        model="switchboard-assistant", messages=messages, stream=True, **keep
                    )
                )
                answer = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
                final = next(c for c in chunks if c.choices and c.choices[0].finish_reason == "stop")
                extension = (final.model_extra or {})["switchboard"]
            else:
                completion = client.chat.completions.create(
                    model="switchboard-assistant", messages=messages, **keep
                )
                answer = completion.choices[0].message.content or ""
                extension = (completion.model_extra or {})["switchboard"]
            conversations.add(extension["conversation_id"])
        assert len(conversations) == 1, keep
        assert_in_context(answer, extension)


def test_langchain_chat_openai_invoke_and_stream_multi_turn(demo_tenant: tuple[str, str]) -> None:
    gateway, key = demo_tenant
    model = ChatOpenAI(
        model="switchboard-assistant", base_url=f"{gateway}/v1", api_key=key, max_retries=0, timeout=120
    )
    history: list[BaseMessage] = []
    for question in TURNS[:2]:
        history.append(HumanMessage(question))
        reply = model.invoke(history)
        assert isinstance(reply.content, str) and reply.content.strip()
        history.append(AIMessage(reply.content))
    history.append(HumanMessage(TURNS[2]))

    invoked = model.invoke(history)
    assert isinstance(invoked.content, str)
    assert_in_context(invoked.content)
    assert invoked.usage_metadata is not None
    assert invoked.usage_metadata["input_tokens"] >= sum(len(str(m.content)) for m in history) // 4

    streamed = "".join(str(chunk.content) for chunk in model.stream(history))
    assert_in_context(streamed)


class Answer(BaseModel):
    days: int


def test_tools_and_structured_output_are_refused_clearly(demo_tenant: tuple[str, str]) -> None:
    gateway, key = demo_tenant
    model = ChatOpenAI(
        model="switchboard-assistant", base_url=f"{gateway}/v1", api_key=key, max_retries=0, timeout=60
    )

    def get_weather(city: str) -> str:
        """The weather in a city."""
        return "sunny"

    with pytest.raises(openai.BadRequestError, match="Client tools are not supported") as tools:
        model.bind_tools([get_weather]).invoke("What's the weather in Moscow?")
    assert tools.value.body is not None and tools.value.body["param"] == "tools"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError, match="Structured output is not supported"):
        model.with_structured_output(Answer).invoke("How many days do I have to return an item?")
    with pytest.raises(openai.BadRequestError) as invalid:
        sdk(demo_tenant).chat.completions.create(
            model="switchboard-assistant", messages=[{"role": "assistant", "content": "hello"}]
        )
    assert invalid.value.body == {
        "message": "The last message must be the user's (role: user).",
        "type": "invalid_request_error",
        "param": "messages[0].role",
        "code": "invalid_value",
        "request_id": invalid.value.body["request_id"],  # type: ignore[index]
    }
