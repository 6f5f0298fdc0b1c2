"""Maps an OpenAI chat completion onto a Switchboard conversation turn.

- The question is the last ``user`` message; ``system`` and ``developer`` prompts are ignored (the tenant's
  assistant settings decide the prompt).
- Which conversation: ``metadata.conversation_id`` continues that conversation; ``metadata.thread`` or
  ``user`` continue the conversation chat keeps for that key (its ``external_key``, opened on first use:
  ``CreateConversation.resume``). Both keep their history in chat, so earlier ``messages`` are not
  replayed. Otherwise the call is stateless: a new conversation whose
  earlier turns are the request's own ``user``/``assistant`` messages, sent to chat as ``history`` (context
  for the search and the answer, not stored), so an SDK that resends the transcript is answered in context.
- Client tools (``tools``, ``functions``, a ``tool_choice`` that demands a call, tool messages) and
  structured output (``response_format`` other than text) are refused with a 400 that says so: the answer
  comes from the tenant's provider chain, grounded and cited, whose offline default cannot call a client's
  function or fill a schema, and which runs only the tenant's own tools (CRM, tickets, handoff). A silently
  ignored ``tools`` made LangChain's ``bind_tools`` return no tool call; a refusal is an error it reports.
- Answers carry the ``switchboard`` extension: conversation and message ids, citations, handoff.
- Usage is chat's for the turn (``TurnResult.usage``, ``switchboard_shared.tokens``): the question, the
  earlier turns sent as history, and the answer; the same count is spent from the tenant's token budget.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import orjson

from switchboard_gateway.auth.principal import Principal
from switchboard_gateway.limits.service import Limits
from switchboard_gateway.openai_compat.errors import OpenAIRequestError
from switchboard_gateway.openai_compat.schemas import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionRequest,
    Choice,
    SwitchboardExtension,
    Usage,
    chunk,
)
from switchboard_shared.contracts.chat import (
    MAX_EARLIER_TURN_CHARS,
    MAX_EARLIER_TURNS,
    MAX_EXTERNAL_KEY_CHARS,
    MAX_MESSAGE_CHARS,
    AnyStreamPacket,
    Channel,
    ChatClient,
    Citation,
    CitationPacket,
    CreateConversation,
    DonePacket,
    EarlierTurn,
    ErrorPacket,
    HandoffInfo,
    HandoffPacket,
    HeartbeatPacket,
    PostMessage,
    ResetPacket,
    TokenPacket,
    TurnResult,
    TurnUsage,
)
from switchboard_shared.contracts.routes import (
    END_USER_HEADER,
    END_USER_VERIFIED_HEADER,
    KEY_SCOPE_HEADER,
    TENANT_HEADER,
)
from switchboard_shared.errors import AppError

NO_CLIENT_TOOLS = (
    "Client tools are not supported: the assistant answers from the tenant's knowledge base and runs only "
    "the tenant's own tools. Send the request without {param}."
)
NO_STRUCTURED_OUTPUT = (
    "Structured output is not supported: the assistant answers in cited text. "
    'Send response_format {"type": "text"} or none.'
)


@dataclass(slots=True)
class Target:
    conversation_id: str
    headers: dict[str, str]
    thread_key: str | None = None
    end_user_id: str = ""
    verified: bool = False
    fresh: bool = False
    named: bool = True  # the caller named the end user (``user`` or an asserted end user)
    history: list[EarlierTurn] = field(default_factory=list)
    citations: list[Citation] = field(default_factory=list)

    def turn(self, question: str) -> PostMessage:
        return (
            PostMessage(text=question, history=self.history) if self.history else PostMessage(text=question)
        )


def refuse_unsupported(request: ChatCompletionRequest) -> None:
    if request.tools:
        raise OpenAIRequestError(
            NO_CLIENT_TOOLS.format(param="tools"), param="tools", code="unsupported_parameter"
        )
    if request.functions:
        raise OpenAIRequestError(
            NO_CLIENT_TOOLS.format(param="functions"), param="functions", code="unsupported_parameter"
        )
    for name, choice in (("tool_choice", request.tool_choice), ("function_call", request.function_call)):
        if choice is not None and choice not in ("none", "auto"):
            raise OpenAIRequestError(
                NO_CLIENT_TOOLS.format(param=name) + ' ("none" and "auto" are accepted).',
                param=name,
                code="unsupported_parameter",
            )
    if request.response_format is not None and request.response_format.type != "text":
        raise OpenAIRequestError(NO_STRUCTURED_OUTPUT, param="response_format", code="unsupported_parameter")
    for index, message in enumerate(request.messages):
        if message.role in ("tool", "function") or message.tool_calls or message.function_call:
            raise OpenAIRequestError(
                NO_CLIENT_TOOLS.format(param="tool calls and tool messages"),
                param=f"messages[{index}]",
                code="unsupported_parameter",
            )


def question_of(request: ChatCompletionRequest) -> str:
    for position, message in enumerate(request.messages):
        try:
            message.text().encode()
        except UnicodeEncodeError:  # a lone surrogate: no contract (and no database) takes it
            raise OpenAIRequestError(
                "Message text must be valid Unicode (it holds a lone surrogate).",
                param=f"messages[{position}].content",
            ) from None
    index = len(request.messages) - 1
    last = request.messages[index]
    if last.role != "user":
        raise OpenAIRequestError(
            "The last message must be the user's (role: user).", param=f"messages[{index}].role"
        )
    text = last.text().strip()
    if not text:
        raise OpenAIRequestError("The last user message is empty.", param=f"messages[{index}].content")
    if len(text) > MAX_MESSAGE_CHARS:
        raise OpenAIRequestError(
            f"The last user message is longer than {MAX_MESSAGE_CHARS} characters.",
            param=f"messages[{index}].content",
            code="string_above_max_length",
        )
    return text


def earlier_turns(request: ChatCompletionRequest) -> list[EarlierTurn]:
    """The transcript before the question: its user and assistant messages, the newest that chat accepts."""
    turns = [
        EarlierTurn(role=message.role, text=text[:MAX_EARLIER_TURN_CHARS])
        for message in request.messages[:-1]
        if message.role in ("user", "assistant") and (text := message.text().strip())
    ]
    return turns[-MAX_EARLIER_TURNS:]


def thread_key(kind: str, value: str) -> str:
    """The conversation key of a client's thread (``thread:…`` or ``user:…``); a key longer than chat keeps
    is replaced by its digest."""
    key = f"{kind}:{value}"
    if len(key) <= MAX_EXTERNAL_KEY_CHARS:
        return key
    return f"{kind}:sha256:{hashlib.sha256(value.encode()).hexdigest()}"


class CompletionService:
    def __init__(
        self,
        *,
        chat: ChatClient,
        limits: Limits,
        principal: Principal,
        turn_timeout: float,
    ) -> None:
        assert principal.key is not None
        self.chat = chat
        self.limits = limits
        self.principal = principal
        self.key = principal.key
        self.turn_timeout = turn_timeout

    def _headers(self, end_user_id: str | None, verified: bool) -> dict[str, str]:
        headers = {TENANT_HEADER: self.key.tenant_id, KEY_SCOPE_HEADER: self.key.scope.value}
        if end_user_id:
            headers[END_USER_HEADER] = end_user_id
            if verified:
                headers[END_USER_VERIFIED_HEADER] = "1"
        return headers

    async def _open_conversation(self, target: Target) -> str:
        """A new conversation, or for a thread the one chat keeps for its key (opened on first use)."""
        body = CreateConversation(
            channel=Channel.API,
            end_user_id=target.end_user_id,
            verified=target.verified,
            external_key=target.thread_key,
            resume=target.thread_key is not None,
            metadata={
                "source": "openai-compatible",
                **({"thread": target.thread_key} if target.thread_key else {}),
                **({"earlier_turns": len(target.history)} if target.history else {}),
            },
        )
        conversation = await self.chat.create_conversation(body, headers=target.headers)
        if not target.named and conversation.end_user_id != target.end_user_id:
            # A resumed thread nobody named an end user for: its turns are its first caller's.
            target.end_user_id = conversation.end_user_id
            target.headers = self._headers(conversation.end_user_id, target.verified)
        return conversation.id

    async def target(self, request: ChatCompletionRequest) -> Target:
        metadata = request.metadata or {}
        verified = self.principal.end_user_verified
        end_user = self.principal.end_user_id or (f"api:{request.user}" if request.user else None)
        if metadata.get("conversation_id"):
            return Target(metadata["conversation_id"], self._headers(end_user, verified))
        # A thread is the end user's own when the caller names one (another user's thread of the same name
        # is another conversation); otherwise it is the tenant's, continued as whoever opened it.
        thread = metadata.get("thread")
        key = (
            thread_key("thread", thread if end_user is None else f"{end_user}/{thread}")
            if thread
            else thread_key("user", end_user)
            if end_user
            else None
        )
        end_user_id = end_user or f"api:{uuid.uuid4().hex}"
        target = Target(
            "", self._headers(end_user_id, verified), key, end_user_id, verified, named=end_user is not None
        )
        if key is None:
            target.history = earlier_turns(request)
            target.fresh = True
        target.conversation_id = await self._open_conversation(target)
        return target

    async def _post(self, target: Target, text: str) -> TurnResult:
        try:
            return await self.chat.post_message(
                target.conversation_id, target.turn(text), headers=target.headers, timeout=self.turn_timeout
            )
        except AppError as exc:
            if exc.status != 404 or target.fresh or target.thread_key is None:
                raise
            # The kept conversation is gone: start a new one for this thread.
            target.conversation_id = await self._open_conversation(target)
            target.fresh = True
            return await self._post(target, text)

    async def complete(self, request: ChatCompletionRequest) -> ChatCompletion:
        refuse_unsupported(request)
        question = question_of(request)
        target = await self.target(request)
        await self.limits.spend_message(self.key)
        result = await self._post(target, question)
        reply = result.reply.text if result.reply else ""
        turn_usage = result.usage or TurnUsage.of(question, reply)
        usage = Usage.model_validate(turn_usage.model_dump())
        await self.limits.spend_tokens(self.key.tenant_id, usage.total_tokens)
        return ChatCompletion(
            id=f"chatcmpl-{result.reply.id if result.reply else uuid.uuid4().hex}",
            created=int(time.time()),
            model=request.model,
            choices=[Choice(message=AssistantMessage(content=reply))],
            usage=usage,
            switchboard=SwitchboardExtension(
                conversation_id=result.conversation_id,
                message_id=result.reply.id if result.reply else None,
                citations=result.reply.citations if result.reply else [],
                handoff=result.handoff,
                owner=result.owner.value,
                no_answer=result.reply.no_answer if result.reply else False,
            ),
        )

    async def open_stream(self, request: ChatCompletionRequest) -> AsyncIterator[bytes]:
        """Opens the chat stream now (so a refused turn is an HTTP error) and returns the chunk iterator."""
        refuse_unsupported(request)
        question = question_of(request)
        target = await self.target(request)
        await self.limits.spend_message(self.key)
        stack = AsyncExitStack()
        try:
            packets = await self._open(stack, target, question)
        except BaseException:
            await stack.aclose()
            raise
        return self._chunks(stack, packets, request, target)

    async def _open(
        self, stack: AsyncExitStack, target: Target, question: str
    ) -> AsyncIterator[AnyStreamPacket]:
        try:
            return await stack.enter_async_context(
                self.chat.stream_turn(target.conversation_id, target.turn(question), headers=target.headers)
            )
        except AppError as exc:
            if exc.status != 404 or target.fresh or target.thread_key is None:
                raise
        # The kept conversation is gone: start a new one for this thread.
        target.conversation_id = await self._open_conversation(target)
        target.fresh = True
        return await self._open(stack, target, question)

    async def _chunks(
        self,
        stack: AsyncExitStack,
        packets: AsyncIterator[AnyStreamPacket],
        request: ChatCompletionRequest,
        target: Target,
    ) -> AsyncIterator[bytes]:
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        model = request.model
        streamed: list[str] = []
        handoff: HandoffInfo | None = None
        result: TurnResult | None = None
        try:
            yield _sse(chunk(completion_id, created, model, {"role": "assistant", "content": ""}))
            async for packet in packets:
                if isinstance(packet, HeartbeatPacket):
                    yield b": heartbeat\n\n"
                elif isinstance(packet, TokenPacket):
                    streamed.append(packet.text)
                    yield _sse(chunk(completion_id, created, model, {"content": packet.text}))
                elif isinstance(packet, CitationPacket):
                    target.citations.append(packet.citation)
                elif isinstance(packet, HandoffPacket):
                    handoff = packet.handoff
                elif isinstance(packet, ResetPacket):
                    # A provider failed mid-answer and the next one starts over. Sent text cannot be taken
                    # back in OpenAI's format: end with an error rather than glue a second answer to it.
                    if "".join(streamed):
                        yield _error_chunk(
                            "The answer was interrupted (its model failed mid-answer); "
                            "discard the partial text and send the request again.",
                            "answer_interrupted",
                        )
                        yield b"data: [DONE]\n\n"
                        return
                    streamed.clear()
                    target.citations.clear()
                elif isinstance(packet, ErrorPacket):
                    yield _error_chunk(packet.message, packet.code)
                    yield b"data: [DONE]\n\n"
                    return
                elif isinstance(packet, DonePacket):
                    result = packet.result
                    break
            reply = result.reply if result else None
            if reply is not None and not streamed and reply.text:
                streamed.append(reply.text)
                yield _sse(chunk(completion_id, created, model, {"content": reply.text}))
            extension = SwitchboardExtension(
                conversation_id=target.conversation_id,
                message_id=reply.id if reply else None,
                citations=reply.citations if reply and reply.citations else target.citations,
                handoff=(result.handoff if result else None) or handoff,
                owner=result.owner.value if result else None,
                no_answer=reply.no_answer if reply else False,
            )
            final = chunk(completion_id, created, model, {}, "stop")
            final["switchboard"] = extension.model_dump(mode="json")
            yield _sse(final)
            usage = (result.usage if result else None) or TurnUsage.of(
                question_of(request), "".join(streamed)
            )
            await self.limits.spend_tokens(self.key.tenant_id, usage.total_tokens)
            if request.stream_options and request.stream_options.include_usage:
                usage_chunk = chunk(completion_id, created, model, {})
                usage_chunk["choices"] = []
                usage_chunk["usage"] = Usage.model_validate(usage.model_dump()).model_dump()
                yield _sse(usage_chunk)
            yield b"data: [DONE]\n\n"
        finally:
            await stack.aclose()


def _sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def _error_chunk(message: str, code: str) -> bytes:
    """An error in the stream, as OpenAI sends one (the SDKs raise ``APIError`` on it)."""
    return _sse({"error": {"message": message, "type": "server_error", "param": None, "code": code}})
