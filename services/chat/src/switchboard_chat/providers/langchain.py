"""LangChain chat models as providers: streaming, and a tool-calling loop where the model supports it."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import orjson
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from switchboard_chat.providers.base import (
    ChatProvider,
    GenerationEvent,
    GenerationRequest,
    TextDelta,
    ToolEvent,
)
from switchboard_chat.providers.plugins import register

MAX_TOOL_ROUNDS = 3


def to_messages(request: GenerationRequest) -> list[BaseMessage]:
    """The system message holds only instructions; the passages travel fenced, as quoted data, in the
    customer's last turn, before the question."""
    messages: list[BaseMessage] = [SystemMessage(request.system_prompt)]
    for role, content in request.history:
        messages.append(HumanMessage(content) if role == "user" else AIMessage(content))
    messages.append(HumanMessage(request.user_turn()))
    return messages


class LangChainProvider(ChatProvider):
    def __init__(
        self,
        name: str,
        key: str,
        model: BaseChatModel,
        *,
        first_token_timeout: float,
        tools: bool = True,
    ) -> None:
        self.name = name
        self.key = key
        self.model = model
        self.first_token_timeout = first_token_timeout
        self.supports_tools = tools

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[GenerationEvent, None]:
        messages = to_messages(request)
        tools = {tool.name: tool for tool in request.tools} if self.supports_tools else {}
        runnable: Any = (
            self.model.bind_tools([tool.as_langchain() for tool in tools.values()]) if tools else self.model
        )
        for round_number in range(MAX_TOOL_ROUNDS + 1):
            gathered: AIMessageChunk | None = None
            async for chunk in runnable.astream(messages):
                if not isinstance(chunk, AIMessageChunk):
                    continue
                gathered = chunk if gathered is None else gathered + chunk
                if chunk.text:
                    yield TextDelta(chunk.text)
            if gathered is None or not gathered.tool_calls:
                return
            messages.append(gathered)
            for call in gathered.tool_calls:
                arguments = dict(call.get("args") or {})
                tool = tools.get(call["name"])
                yield ToolEvent(call["name"], arguments, "started")
                if tool is None:
                    outcome_payload: dict[str, Any] = {"status": "error", "message": "unknown tool"}
                    status = "error"
                else:
                    outcome = await tool.run(arguments)
                    outcome_payload = outcome.for_model()
                    status = "ok" if outcome.status == "not_found" else outcome.status
                yield ToolEvent(call["name"], arguments, status, outcome_payload)
                messages.append(
                    ToolMessage(
                        content=orjson.dumps(outcome_payload).decode(),
                        tool_call_id=call.get("id") or call["name"],
                        name=call["name"],
                    )
                )
            if round_number == MAX_TOOL_ROUNDS - 1:
                runnable = self.model  # the last round must answer in words


def build_openai(
    *,
    key: str,
    name: str,
    api_key: str | None,
    base_url: str | None,
    model: str,
    timeout: float,
    total_timeout: float,
    max_tokens: int,
    temperature: float,
    compatible: bool,
) -> LangChainProvider:
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(
        model=model,
        api_key=api_key or "not-needed",  # type: ignore[arg-type]
        base_url=base_url,
        timeout=total_timeout,
        max_retries=0,
        max_completion_tokens=max_tokens,
        # OpenAI-compatible servers (llama.cpp's, Ollama's, older vLLM) know only the older ``max_tokens``;
        # without it the cap is silently ignored and a small model can run on until its context is full.
        extra_body={"max_tokens": max_tokens} if compatible else None,
        temperature=temperature,
        streaming=True,
        stream_usage=not compatible,
    )
    return LangChainProvider(name, key, chat, first_token_timeout=timeout)


def build_anthropic(
    *,
    key: str,
    api_key: str | None,
    base_url: str | None,
    model: str,
    timeout: float,
    total_timeout: float,
    max_tokens: int,
    temperature: float,
) -> LangChainProvider:
    from langchain_anthropic import ChatAnthropic

    chat = ChatAnthropic(  # type: ignore[call-arg]
        model=model,
        api_key=api_key or "",
        base_url=base_url,
        max_tokens=max_tokens,
        temperature=temperature,
        max_retries=0,
        default_request_timeout=total_timeout,
        streaming=True,
    )
    return LangChainProvider("anthropic", key, chat, first_token_timeout=timeout)


def build_google(
    *,
    key: str,
    api_key: str | None,
    base_url: str | None,
    model: str,
    timeout: float,
    total_timeout: float,
    max_tokens: int,
    temperature: float,
) -> LangChainProvider:
    from langchain_google_genai import ChatGoogleGenerativeAI

    # The google-genai SDK under it: REST, natively async. Its retry count counts the first attempt (1 is
    # no retry); left unset, a failed request is sent five times before the chain may fall back.
    chat = ChatGoogleGenerativeAI(  # type: ignore[call-arg]
        model=model,
        google_api_key=api_key or "",
        base_url=_gemini_base_url(base_url),
        max_output_tokens=max_tokens,
        temperature=temperature,
        max_retries=1,
        timeout=total_timeout,
    )
    return LangChainProvider("google", key, chat, first_token_timeout=timeout)


def _gemini_base_url(base_url: str | None) -> str | None:
    """The Gemini endpoint as a URL; a bare host[:port] (how it was configured before) means HTTPS."""
    if not base_url or "://" in base_url:
        return base_url
    return f"https://{base_url}"


register(
    "openai",
    lambda o: build_openai(name="openai", compatible=False, **o.model_options()),
    fleet=lambda s: (s.openai_api_key, s.openai_base_url, s.openai_model),
    requires={"api_key": "openai needs an API key."},
)
register(
    "openai-compatible",
    lambda o: build_openai(name="openai-compatible", compatible=True, **o.model_options()),
    fleet=lambda s: (s.openai_compatible_api_key, s.openai_compatible_base_url, s.openai_compatible_model),
    requires={"base_url": "openai-compatible needs a base URL."},
    tenant_url_needs_key=False,
)
register(
    "anthropic",
    lambda o: build_anthropic(**o.model_options()),
    fleet=lambda s: (s.anthropic_api_key, s.anthropic_base_url, s.anthropic_model),
    requires={"api_key": "anthropic needs an API key."},
)
register(
    "google",
    lambda o: build_google(**o.model_options()),
    fleet=lambda s: (s.google_api_key, s.google_base_url, s.google_model),
    requires={"api_key": "google needs an API key."},
)
