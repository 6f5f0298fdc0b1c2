"""Contracts of the chat service's internal API, used by the gateway and integrations; the stream codec
(``encode_sse`` / ``decode_sse``) and the typed client of that API (``ChatClient``)."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import orjson
from pydantic import BaseModel, Field, TypeAdapter, ValidationError, model_validator

from switchboard_shared.contracts.common import CleanText, Contract
from switchboard_shared.contracts.routes import TENANT_HEADER
from switchboard_shared.errors import AppError, ErrorCode
from switchboard_shared.tokens import estimate_tokens

if TYPE_CHECKING:
    from switchboard_shared.http_client import Downstream

MAX_MESSAGE_CHARS = 4000
# The longest key of a conversation (a messenger's chat id, an API client's thread).
MAX_EXTERNAL_KEY_CHARS = 200


class Channel(StrEnum):
    WEB = "web"
    TELEGRAM = "telegram"
    WHATSAPP = "whatsapp"
    API = "api"


# Conversations of these channels are opened only by integrations, for a verified webhook.
MESSENGER_CHANNELS = frozenset({Channel.TELEGRAM, Channel.WHATSAPP})


class Owner(StrEnum):
    BOT = "bot"
    HUMAN = "human"


class ConversationStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class Role(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"
    OPERATOR = "operator"
    SYSTEM = "system"


class EndUserProfile(Contract):
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    crm_id: str | None = None
    locale: str | None = None


class CreateConversation(Contract):
    channel: Channel = Channel.API
    end_user_id: str = Field(min_length=1, max_length=200)
    verified: bool = False
    profile: EndUserProfile | None = None
    external_key: str | None = Field(
        default=None, max_length=MAX_EXTERNAL_KEY_CHARS, description="Channel's chat id, or a client's thread"
    )
    resume: bool = Field(
        default=False,
        description="With external_key (a server or admin caller): continue the newest conversation opened "
        "through the API with this key on this channel, whatever its end user (a client's thread, such as "
        "the OpenAI-compatible API's user or metadata.thread); a new one is opened on first use. Answered "
        "200 when continued, 201 when opened.",
    )
    metadata: dict[str, Any] = Field(default_factory=dict)


class Citation(Contract):
    index: int = Field(ge=1, description="The passage number the answer cites, [1], [2] …")
    chunk_id: str
    document_id: str
    title: str
    url: str | None = None
    snippet: str | None = None


class Message(Contract):
    id: str
    conversation_id: str
    role: Role
    text: str
    created_at: datetime
    citations: list[Citation] = Field(default_factory=list)
    provider: str | None = None
    no_answer: bool = False
    operator_id: str | None = None


class Conversation(Contract):
    id: str
    tenant_id: str
    channel: Channel
    end_user_id: str
    verified: bool
    owner: Owner
    status: ConversationStatus
    created_at: datetime
    updated_at: datetime
    external_key: str | None = None
    profile: EndUserProfile | None = None


class ConversationWithMessages(Conversation):
    messages: list[Message] = Field(default_factory=list)


MAX_EARLIER_TURNS = 100
MAX_EARLIER_TURN_CHARS = 16_000


class EarlierTurn(Contract):
    """A turn that happened before the conversation's stored messages, told by a stateless client that keeps
    the transcript itself (the OpenAI-compatible API): context for this answer, never stored."""

    role: Literal["user", "assistant"]
    text: str = Field(min_length=1, max_length=MAX_EARLIER_TURN_CHARS)


class PostMessage(Contract):
    text: CleanText = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)
    verified: bool | None = Field(default=None, description="Identity verified for this message (gateway)")
    client_message_id: str | None = Field(default=None, max_length=200, description="Idempotency key")
    providers: list[str] | None = Field(
        default=None,
        description="Override the tenant's provider chain (server and admin keys only, among the tenant's "
        "providers)",
    )
    history: list[EarlierTurn] = Field(
        default_factory=list,
        max_length=MAX_EARLIER_TURNS,
        description=(
            "Earlier turns, oldest first, placed before the stored ones for the search and the answer "
            "(not stored); server and admin keys only"
        ),
    )


class LatencySplit(Contract):
    retrieval_ms: float = 0.0
    generation_ms: float = 0.0
    total_ms: float = 0.0


class HandoffInfo(Contract):
    reason: str
    ticket_id: str | None = None
    handoff_id: str | None = None


class ContextPassage(Contract):
    """A passage the answerer was given (numbered as the answer cites it)."""

    index: int = Field(ge=1)
    chunk_id: str
    document_id: str
    title: str
    text: str


class TurnUsage(Contract):
    """Estimated tokens of a turn's text (``switchboard_shared.tokens``): what it costs the tenant's daily
    token budget and what the OpenAI-compatible API reports."""

    prompt_tokens: int = Field(ge=0, description="The customer's message and the earlier turns sent with it")
    completion_tokens: int = Field(ge=0, description="The answer")
    total_tokens: int = Field(ge=0)

    @classmethod
    def of(cls, question: str, answer: str, earlier_tokens: int = 0) -> TurnUsage:
        prompt = estimate_tokens(question) + earlier_tokens
        completion = estimate_tokens(answer)
        return cls(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


class TurnResult(Contract):
    conversation_id: str
    user_message: Message
    reply: Message | None = Field(default=None, description="None while a human owns the conversation")
    owner: Owner
    handoff: HandoffInfo | None = None
    latency: LatencySplit = Field(default_factory=LatencySplit)
    sources: list[str] = Field(default_factory=list, description="document ids used")
    retrieved: list[str] = Field(
        default_factory=list, description="document ids of the passages retrieval returned, in rank order"
    )
    context: list[ContextPassage] | None = Field(
        default=None,
        description="The passages given to the answerer and its support score (0..1, extractive only): for "
        "operators and services (server and admin keys), never for end users",
    )
    support: float | None = Field(default=None, description="See context")
    usage: TurnUsage | None = Field(
        default=None,
        description="Estimated tokens of the turn (the message, earlier turns sent with it, the answer); "
        "filled from the message and the answer when not given",
    )

    @model_validator(mode="after")
    def _usage(self) -> TurnResult:
        if self.usage is None:
            self.usage = TurnUsage.of(self.user_message.text, self.reply.text if self.reply else "")
        return self


class InboundMessage(Contract):
    """A message from a messenger channel, normalised by integrations and handed to chat."""

    channel: Channel
    end_user_id: str = Field(min_length=1, max_length=200)
    external_key: str = Field(min_length=1, max_length=MAX_EXTERNAL_KEY_CHARS)
    text: CleanText = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)
    idempotency_key: str = Field(min_length=1, max_length=200)
    profile: EndUserProfile | None = None


class OperatorMessage(Contract):
    text: CleanText = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)
    operator_id: str = Field(min_length=1, max_length=200)
    idempotency_key: str | None = Field(default=None, max_length=200)


class OwnerChange(Contract):
    owner: Owner
    actor: str = Field(min_length=1, max_length=200, description="who: bot, operator id, rule name")
    reason: str = Field(default="", max_length=1000)


class StatusChange(Contract):
    status: ConversationStatus
    actor: str = Field(min_length=1, max_length=200)
    reason: str = Field(default="", max_length=1000)


class Feedback(Contract):
    message_id: str
    rating: Literal["up", "down"]
    comment: str | None = Field(default=None, max_length=2000)


class Csat(Contract):
    score: int = Field(ge=1, le=5)
    comment: str | None = Field(default=None, max_length=2000)


# --- the typed stream of a turn (SSE: `event: <type>`, `data: <json packet>`) ---


class TokenPacket(Contract):
    type: Literal["token"] = "token"
    text: str


class CitationPacket(Contract):
    type: Literal["citation"] = "citation"
    citation: Citation


class ToolCallPacket(Contract):
    type: Literal["tool_call"] = "tool_call"
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    status: Literal["started", "ok", "error", "refused"] = "ok"


class HandoffPacket(Contract):
    type: Literal["handoff"] = "handoff"
    handoff: HandoffInfo


class ErrorPacket(Contract):
    type: Literal["error"] = "error"
    code: str
    message: str


class ResetPacket(Contract):
    """Discard the answer text streamed so far: its provider failed mid-answer and another answers anew."""

    type: Literal["reset"] = "reset"
    reason: str = ""


class CuratedPacket(Contract):
    """The answer that follows is one of the tenant's curated answers (no language model wrote it)."""

    type: Literal["curated"] = "curated"
    answer_id: str
    score: float = Field(description="How close the message came to the curated question (cosine)")
    language: str


class DonePacket(Contract):
    type: Literal["done"] = "done"
    result: TurnResult


class HeartbeatPacket(Contract):
    type: Literal["heartbeat"] = "heartbeat"


# What a turn itself produces, in order; the stream adds heartbeats while it waits.
TurnPacket = (
    TokenPacket
    | CitationPacket
    | ToolCallPacket
    | HandoffPacket
    | ErrorPacket
    | ResetPacket
    | CuratedPacket
    | DonePacket
)
AnyStreamPacket = TurnPacket | HeartbeatPacket
StreamPacket = Annotated[AnyStreamPacket, Field(discriminator="type")]
STREAM_PACKETS: TypeAdapter[AnyStreamPacket] = TypeAdapter(StreamPacket)

# Line ends of str.splitlines() (and so of httpx's iter_lines) besides CR and LF that JSON may carry raw:
# escaped, every packet stays one `data:` line for any reader.
_RAW_LINE_ENDS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def encode_sse(packet: AnyStreamPacket) -> bytes:
    """One packet as a server-sent event: ``event: <type>`` and one ``data:`` line of JSON."""
    return f"event: {packet.type}\ndata: {packet.model_dump_json().translate(_RAW_LINE_ENDS)}\n\n".encode()


class SSEDecoder:
    """The reading side of the stream codec, one line at a time: ``feed`` a line (``str`` or ``bytes``, with
    or without its line end) and get the packet a blank line completes. A packet of a type newer than the
    reader, or one cut off, is skipped."""

    __slots__ = ("_data",)

    def __init__(self) -> None:
        self._data: list[str] = []

    def feed(self, line: str | bytes) -> AnyStreamPacket | None:
        text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
        text = text.rstrip("\r\n")
        if text.startswith("data:"):
            self._data.append(text[5:].removeprefix(" "))
            return None
        if text or not self._data:
            return None
        raw, self._data = "\n".join(self._data), []
        try:
            return STREAM_PACKETS.validate_json(raw)
        except (ValueError, ValidationError):
            return None

    def close(self) -> AnyStreamPacket | None:
        """The packet of a stream that ended without its last blank line, if any."""
        return self.feed("")


def decode_sse(lines: Iterable[str | bytes]) -> Iterator[AnyStreamPacket]:
    """Packets from the lines of a stream (httpx's ``iter_lines``), as they arrive."""
    decoder = SSEDecoder()
    for line in lines:
        if (packet := decoder.feed(line)) is not None:
            yield packet
    if (packet := decoder.close()) is not None:
        yield packet


async def adecode_sse(lines: AsyncIterable[str | bytes]) -> AsyncIterator[AnyStreamPacket]:
    """Packets from the lines of a stream read asynchronously (aiohttp's ``response.content``, httpx's
    ``aiter_lines``), as they arrive."""
    decoder = SSEDecoder()
    async for line in lines:
        if (packet := decoder.feed(line)) is not None:
            yield packet
    if (packet := decoder.close()) is not None:
        yield packet


def decode_sse_body(body: bytes) -> list[AnyStreamPacket]:
    """Every packet of a whole (or cut-off) stream body."""
    return list(decode_sse(body.split(b"\n")))


# --- per-tenant assistant settings (`GET/PUT /internal/v1/assistant`) ---

ProviderName = Literal["extractive", "openai", "openai-compatible", "anthropic", "google", "local"]
ToolName = Literal["get_customer", "get_order_status", "create_ticket", "handoff_to_human"]
ALL_TOOLS: tuple[ToolName, ...] = ("get_customer", "get_order_status", "create_ticket", "handoff_to_human")

DEFAULT_HANDOFF_PHRASES: dict[str, list[str]] = {
    "en": ["human", "agent", "operator", "real person", "live person", "talk to someone", "support team"],
    "ru": ["человек", "оператор", "живой", "менеджер", "специалист", "сотрудник", "позовите"],
}
DEFAULT_FRUSTRATION_PHRASES: dict[str, list[str]] = {
    "en": ["useless", "stupid", "terrible", "awful", "ridiculous", "not helpful", "waste of time", "wtf"],
    "ru": ["бесполезн", "ужас", "тупой", "кошмар", "надоел", "не помогает", "издеваетесь", "бред"],
}


class EscalationRule(Contract):
    """A tenant rule: a customer message matching ``pattern`` (a regular expression) escalates."""

    name: str = Field(min_length=1, max_length=100)
    pattern: str = Field(min_length=1, max_length=500)
    reason: str = Field(default="", max_length=500)


class EscalationSettings(Contract):
    handoff_phrases: dict[str, list[str]] = Field(
        default_factory=lambda: {lang: list(words) for lang, words in DEFAULT_HANDOFF_PHRASES.items()},
        description="Per language: words or phrases with which a customer asks for a human",
    )
    frustration_phrases: dict[str, list[str]] = Field(
        default_factory=lambda: {lang: list(words) for lang, words in DEFAULT_FRUSTRATION_PHRASES.items()}
    )
    escalate_on_frustration: bool = True
    max_unsupported_answers: int | None = Field(
        default=None, ge=1, le=20, description="None: the service default (CHAT_ESCALATE_AFTER_UNSUPPORTED)"
    )
    rules: list[EscalationRule] = Field(default_factory=list, max_length=50)
    create_ticket: bool = True


class ProviderConfig(Contract):
    model: str | None = Field(default=None, max_length=200)
    base_url: str | None = Field(default=None, max_length=500)
    api_key: str | None = Field(default=None, max_length=500, description="Write-only; never returned")
    api_key_set: bool = Field(default=False, description="Read-only: an API key is stored")
    timeout_seconds: float | None = Field(default=None, gt=0, le=300)


class AssistantSettings(Contract):
    name: str = Field(default="Assistant", min_length=1, max_length=200)
    instructions: str = Field(default="", max_length=8000, description="Persona and instructions")
    languages: list[str] = Field(default_factory=lambda: ["en", "ru"], max_length=20)
    providers: list[ProviderName] | None = Field(
        default=None, description="Ordered provider chain; None: the service default"
    )
    default_providers: list[ProviderName] = Field(
        default_factory=list, description="Read-only: the service's chain, used while providers is None"
    )
    provider_configs: dict[ProviderName, ProviderConfig] = Field(default_factory=dict)
    escalation: EscalationSettings = Field(default_factory=EscalationSettings)
    greeting: dict[str, str] = Field(default_factory=dict, description="Per language")
    tools: list[ToolName] = Field(default_factory=lambda: list(ALL_TOOLS))
    kb_ids: list[str] | None = Field(default=None, description="Knowledge bases searched; None: all")


class AssistantGreeting(Contract):
    """What the widget may read of the tenant's assistant before a conversation exists."""

    name: str
    greeting: dict[str, str] = Field(default_factory=dict, description="Per language")


class ConversationTransition(Contract):
    field: Literal["owner", "status"]
    from_value: str
    to_value: str
    actor: str
    reason: str
    created_at: datetime


# --- the typed client of chat's internal API ---

M = TypeVar("M", bound=BaseModel)
# A turn may run retrieval and an LLM; give it longer than a plain call.
INBOUND_TIMEOUT = 120.0


def _validated(model: type[M], payload: Any) -> M:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise AppError(ErrorCode.UPSTREAM_ERROR, "The chat service answered an unexpected shape.") from exc


class ChatClient:
    """Chat's internal API on the caller's shared downstream client. ``headers`` carry the caller's identity
    (tenant, key scope, end user) as the gateway asserts it; the ``tenant_id`` methods send the tenant only."""

    def __init__(self, downstream: Downstream) -> None:
        self.downstream = downstream

    async def create_conversation(
        self, body: CreateConversation, *, headers: Mapping[str, str]
    ) -> Conversation:
        payload = await self.downstream.json_request(
            "POST", "/internal/v1/conversations", json=body.model_dump(mode="json"), headers=headers
        )
        return _validated(Conversation, payload)

    async def post_message(
        self,
        conversation_id: str,
        body: PostMessage,
        *,
        headers: Mapping[str, str],
        timeout: float | None = None,
    ) -> TurnResult:
        """One turn, answered as a whole."""
        payload = await self.downstream.json_request(
            "POST",
            f"/internal/v1/conversations/{conversation_id}/messages",
            json=body.model_dump(mode="json", exclude_unset=True),
            headers=headers,
            timeout=timeout,
        )
        return _validated(TurnResult, payload)

    @asynccontextmanager
    async def stream_turn(
        self, conversation_id: str, body: PostMessage, *, headers: Mapping[str, str]
    ) -> AsyncIterator[AsyncIterator[AnyStreamPacket]]:
        """One turn as its packets arrive. A refused turn raises ``AppError`` with chat's code, message and
        status before any packet."""
        async with self.downstream.stream(
            "POST",
            f"/internal/v1/conversations/{conversation_id}/messages",
            json=body.model_dump(mode="json", exclude_unset=True),
            headers={**headers, "Accept": "text/event-stream"},
            timeout=None,
        ) as response:
            if response.status >= 400:
                payload = await response.read()
                try:
                    error = orjson.loads(payload).get("error") or {}
                except (orjson.JSONDecodeError, AttributeError):
                    error = {}
                code = str(error.get("code", ""))
                raise AppError(
                    ErrorCode(code) if code in set(ErrorCode) else ErrorCode.UPSTREAM_ERROR,
                    str(error.get("message") or f"chat answered {response.status}"),
                    status=response.status,
                )
            yield adecode_sse(response.content)

    async def inbound(self, *, tenant_id: str, message: InboundMessage) -> TurnResult:
        # Safe to retry: chat deduplicates on the message's idempotency key.
        payload = await self.downstream.json_request(
            "POST",
            "/internal/v1/inbound",
            json=message.model_dump(mode="json"),
            headers={TENANT_HEADER: tenant_id},
            idempotent=True,
            timeout=INBOUND_TIMEOUT,
        )
        return TurnResult.model_validate(payload)

    async def operator_message(
        self, *, tenant_id: str, conversation_id: str, message: OperatorMessage
    ) -> str | None:
        """Store an operator message in the conversation; returns chat's message id."""
        payload = await self.downstream.json_request(
            "POST",
            f"/internal/v1/conversations/{conversation_id}/operator-messages",
            json=message.model_dump(mode="json"),
            headers={TENANT_HEADER: tenant_id},
            idempotent=message.idempotency_key is not None,
        )
        message_id = payload.get("id") if isinstance(payload, dict) else None
        return str(message_id) if message_id is not None else None

    async def set_owner(
        self, *, tenant_id: str, conversation_id: str, change: OwnerChange, timeout: float | None = None
    ) -> None:
        await self.downstream.json_request(
            "PUT",
            f"/internal/v1/conversations/{conversation_id}/owner",
            json=change.model_dump(mode="json"),
            headers={TENANT_HEADER: tenant_id},
            timeout=timeout,
        )

    async def set_status(self, *, tenant_id: str, conversation_id: str, change: StatusChange) -> None:
        await self.downstream.json_request(
            "PUT",
            f"/internal/v1/conversations/{conversation_id}/status",
            json=change.model_dump(mode="json"),
            headers={TENANT_HEADER: tenant_id},
        )
