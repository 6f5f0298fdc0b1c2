"""The subset of OpenAI's Chat Completions wire format Switchboard speaks, plus the ``switchboard``
extension field (conversation id, message id, citations, handoff) on the completion and the last chunk."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from switchboard_shared.contracts.chat import Citation, HandoffInfo

MODEL_ID = "switchboard-assistant"


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    function_call: dict[str, Any] | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        if self.content is None:
            return ""
        return "\n".join(part.text or "" for part in self.content if part.type == "text")


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class ResponseFormat(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str


class ChatCompletionRequest(BaseModel):
    """Sampling parameters (temperature, max_tokens …) are accepted and ignored: the tenant's assistant
    settings decide them. Client tools and structured output are refused (see the service)."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1, max_length=200)
    messages: list[ChatMessage] = Field(min_length=1, max_length=500)
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = Field(
        default=None, max_length=200, description="Continues this end user's conversation across calls"
    )
    metadata: dict[str, str] | None = Field(
        default=None,
        description="conversation_id: continue that conversation; thread: a key of your own for one",
    )
    n: int | None = Field(default=None, ge=1, le=1)
    tools: list[dict[str, Any]] | None = Field(
        default=None, description="Not supported: refused unless empty"
    )
    tool_choice: str | dict[str, Any] | None = Field(
        default=None, description='Only "none" or "auto" (no tool is ever called)'
    )
    functions: list[dict[str, Any]] | None = Field(default=None, description="Not supported: refused")
    function_call: str | dict[str, Any] | None = Field(default=None, description='Only "none" or "auto"')
    response_format: ResponseFormat | None = Field(default=None, description='Only {"type": "text"}')


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class SwitchboardExtension(BaseModel):
    conversation_id: str
    message_id: str | None = None
    citations: list[Citation] = Field(default_factory=list)
    handoff: HandoffInfo | None = None
    owner: str | None = None
    no_answer: bool = False


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    refusal: None = None


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop"] = "stop"
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    switchboard: SwitchboardExtension


class OpenAIErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None
    request_id: str | None = None


class OpenAIErrorResponse(BaseModel):
    """OpenAI's error object, the error shape of these routes."""

    error: OpenAIErrorBody


def openai_error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": OpenAIErrorResponse} for status in statuses}


class Model(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "switchboard"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Model]


def chunk(
    completion_id: str, created: int, model: str, delta: dict[str, Any], finish_reason: str | None = None
) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
    }
