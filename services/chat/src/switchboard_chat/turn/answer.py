"""The bot's answer: condense a follow-up into a standalone query, search, stream from the provider chain
(tools through integrations), then hand off after too many unsupported answers and finish the turn.
No DB session is held while retrieval or a provider is working."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import structlog

from switchboard_chat.conversations.window import WindowMessage
from switchboard_chat.providers.base import (
    AnswerVerdict,
    GenerationRequest,
    Passage,
    TextDelta,
    ToolEvent,
)
from switchboard_chat.providers.registry import (
    ChainEvent,
    ProviderAbandoned,
    ProviderSelected,
    ProviderSkipped,
)
from switchboard_chat.providers.texts import text
from switchboard_chat.runtime import Runtime
from switchboard_chat.tools.service import ToolContext, build_tools
from switchboard_chat.turn import curated, retrieval
from switchboard_chat.turn.actions import emit_tool_called, tool_context
from switchboard_chat.turn.citations import cited
from switchboard_chat.turn.handoff import start_handoff_for
from switchboard_chat.turn.intake import Prepared, ms_since
from switchboard_chat.turn.prompt import budget_history, passages_block, system_prompt
from switchboard_chat.turn.query import history_aware_query, search_query
from switchboard_chat.turn.reply import Reply, finish
from switchboard_chat.turn.stream import TurnHandle
from switchboard_shared.contracts.analytics import ALL_KNOWLEDGE_BASES, EventType
from switchboard_shared.contracts.chat import (
    ContextPassage,
    ErrorPacket,
    HandoffInfo,
    HandoffPacket,
    ResetPacket,
    TokenPacket,
    ToolCallPacket,
)
from switchboard_shared.contracts.retrieval import QueryWords

log = structlog.get_logger(__name__)


@dataclass
class Knowledge:
    """What the answer is grounded on: the query searched, the passages found, what was unavailable."""

    query: str
    passages: list[Passage]
    kb_unavailable: bool
    tools_unavailable: bool
    retrieval_ms: float
    corrected_query: str | None = None  # the query as retrieval searched it, when it corrected a word
    query_words: QueryWords | None = None  # how common its words are in the knowledge base


@dataclass
class Generation:
    """What the provider chain produced, gathered while its packets are streamed to the customer."""

    parts: list[str] = field(default_factory=list)
    provider: str | None = None
    verdict: bool | None = None
    support: float | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)


async def answer(runtime: Runtime, prepared: Prepared, handle: TurnHandle) -> None:
    history = prepared.context[:-1]
    query = await _standalone_query(runtime, prepared, history)
    retrieval_started = time.perf_counter()
    found = await retrieval.search(
        runtime,
        tenant_id=prepared.tenant_id,
        conversation_id=prepared.conversation_id,
        query=query,
        kb_ids=prepared.assistant.kb_ids,
        language=prepared.language,
    )
    retrieval_ms = ms_since(retrieval_started)
    if found.curated is not None:
        await curated.answer(runtime, prepared, handle, found.curated, query=query, retrieval_ms=retrieval_ms)
        return
    context = tool_context(runtime, prepared)
    knowledge = Knowledge(
        query=query,
        passages=found.passages,
        kb_unavailable=found.kb_unavailable,
        tools_unavailable=context.integrations.breaker_state == "open",
        retrieval_ms=retrieval_ms,
        corrected_query=found.corrected_query,
        query_words=found.query_words,
    )
    request = _generation_request(runtime, prepared, history, knowledge, context)
    generation_started = time.perf_counter()
    generation = await _generate(runtime, prepared, request, handle)
    generation_ms = ms_since(generation_started)
    await _conclude(runtime, prepared, handle, knowledge, context, generation, generation_ms)


async def _standalone_query(runtime: Runtime, prepared: Prepared, history: list[WindowMessage]) -> str:
    """The search query: a follow-up folds in the previous question's terms, and the chain's language
    model, if it has one, writes the standalone question."""
    settings = runtime.settings
    query = search_query(prepared.text, history)
    if query != prepared.text and settings.query_rewrite_timeout_seconds > 0:
        rewritten = await history_aware_query(
            runtime.registry,
            prepared.chain,
            prepared.assistant,
            prepared.text,
            budget_history(history, settings.history_token_budget),
            timeout=settings.query_rewrite_timeout_seconds,
        )
        query = rewritten or query
    return query


def _generation_request(
    runtime: Runtime,
    prepared: Prepared,
    history: list[WindowMessage],
    knowledge: Knowledge,
    context: ToolContext,
) -> GenerationRequest:
    settings = runtime.settings
    kb_unavailable, tools_unavailable = knowledge.kb_unavailable, knowledge.tools_unavailable
    passages = knowledge.passages
    return GenerationRequest(
        system_prompt=system_prompt(
            prepared.assistant,
            language=prepared.language,
            kb_unavailable=kb_unavailable,
            tools_unavailable=tools_unavailable,
            verified=prepared.verified,
        ),
        history=budget_history(history, settings.history_token_budget),
        question=prepared.text,
        context_prompt=passages_block(passages),
        search_query=knowledge.query,
        corrected_query=knowledge.corrected_query,
        query_words=knowledge.query_words,
        passages=passages,
        language=prepared.language,
        tools=[] if tools_unavailable else build_tools(context, list(prepared.assistant.tools)),
        kb_unavailable=kb_unavailable,
        tools_unavailable=tools_unavailable,
        verified=prepared.verified,
        min_support=settings.min_support_score,
        lexical_min_support=settings.lexical_min_support_score,
        cross_language_discount=settings.cross_language_support_discount,
        similarity=None
        if kb_unavailable or not passages
        else retrieval.similarity(runtime, prepared.tenant_id),
        max_tokens=settings.max_output_tokens,
        temperature=settings.temperature,
    )


async def _generate(
    runtime: Runtime, prepared: Prepared, request: GenerationRequest, handle: TurnHandle
) -> Generation:
    """Stream from the chain within the turn's total time; a cut-off answer keeps what came so far."""
    generation = Generation()
    try:
        async with asyncio.timeout(runtime.settings.provider_total_timeout_seconds):
            async for event in runtime.registry.stream(prepared.chain, prepared.assistant, request):
                _take(runtime, prepared, handle, generation, event)
    except Exception as exc:
        log.warning(
            "generation_interrupted",
            provider=generation.provider,
            error=f"{type(exc).__name__}: {str(exc)[:200]}",
        )
        handle.put(ErrorPacket(code="generation_interrupted", message="The answer was cut off."))
    return generation


def _take(
    runtime: Runtime, prepared: Prepared, handle: TurnHandle, generation: Generation, event: ChainEvent
) -> None:
    if isinstance(event, TextDelta):
        generation.parts.append(event.text)
        handle.put(TokenPacket(text=event.text))
    elif isinstance(event, ToolEvent):
        _take_tool_event(runtime, prepared, handle, generation, event)
    elif isinstance(event, AnswerVerdict):
        generation.verdict = event.no_answer
        generation.support = event.support
    elif isinstance(event, ProviderSelected):
        generation.provider = event.name
    elif isinstance(event, ProviderSkipped | ProviderAbandoned):
        _take_fallback(runtime, prepared, handle, generation, event)


def _take_tool_event(
    runtime: Runtime, prepared: Prepared, handle: TurnHandle, generation: Generation, event: ToolEvent
) -> None:
    status = event.status if event.status in ("started", "ok", "error", "refused") else "ok"
    handle.put(ToolCallPacket(name=event.name, arguments=event.arguments, status=status))  # type: ignore[arg-type]
    if event.status == "started":
        return
    generation.tool_calls.append({"name": event.name, "status": event.status})
    emit_tool_called(runtime, prepared, event.name, event.status, verified=prepared.verified)


def _take_fallback(
    runtime: Runtime,
    prepared: Prepared,
    handle: TurnHandle,
    generation: Generation,
    event: ProviderSkipped | ProviderAbandoned,
) -> None:
    """A provider was skipped, or dropped mid-answer (what it streamed is void: the client resets)."""
    if isinstance(event, ProviderAbandoned):
        generation.parts.clear()
        generation.verdict = None
        generation.support = None
        handle.put(ResetPacket(reason=event.reason))
    generation.skipped.append({"provider": event.name, "reason": event.reason})
    runtime.platform.analytics.emit(
        EventType.PROVIDER_FALLBACK,
        tenant_id=prepared.tenant_id,
        conversation_id=prepared.conversation_id,
        channel=prepared.channel,
        properties={
            "from_provider": event.name,
            "to_provider": _next_provider(prepared.chain, event.name),
            "error": event.reason,
        },
    )


def _next_provider(chain: list[str], failed: str) -> str | None:
    """The provider the chain falls through to after ``failed`` (None when it was the last)."""
    if failed in chain and chain.index(failed) + 1 < len(chain):
        return chain[chain.index(failed) + 1]
    return None


async def _conclude(
    runtime: Runtime,
    prepared: Prepared,
    handle: TurnHandle,
    knowledge: Knowledge,
    context: ToolContext,
    generation: Generation,
    generation_ms: float,
) -> None:
    """Say "I do not know" for an empty answer, hand off when this answer is one unsupported answer too
    many (or the model asked for a human), and finish the turn."""
    passages = knowledge.passages
    reply = "".join(generation.parts).strip()
    verdict = generation.verdict
    if not reply:
        reply = text(prepared.language, "kb_down" if knowledge.kb_unavailable else "no_answer")
        handle.put(TokenPacket(text=reply))
        verdict = True
    citations = cited(reply, passages)
    no_answer = verdict if verdict is not None else (not passages and not generation.tool_calls)
    streak = prepared.unsupported_streak + 1 if no_answer else 0
    limit = (
        prepared.assistant.escalation.max_unsupported_answers or runtime.settings.escalate_after_unsupported
    )
    reason = context.handoff_reason or (
        f"{streak} answers in a row without knowledge-base support" if streak >= limit else None
    )
    info: HandoffInfo | None = None
    if reason is not None:
        info, note = await _hand_off(runtime, prepared, handle, reason)
        reply = f"{reply}\n\n{note}"
    await finish(
        runtime,
        prepared,
        handle,
        Reply(
            answer=reply,
            citations=citations,
            provider=generation.provider,
            no_answer=no_answer,
            retrieval_ms=knowledge.retrieval_ms,
            generation_ms=generation_ms,
            handoff=info,
            handoff_reason=reason,
            streak=0 if info else streak,
            meta=_meta(knowledge, context, generation, prepared.assistant.kb_ids),
            crm_id=context.crm_id,
            context=_context_passages(passages) if prepared.operator else None,
        ),
    )


async def _hand_off(
    runtime: Runtime, prepared: Prepared, handle: TurnHandle, reason: str
) -> tuple[HandoffInfo | None, str]:
    """Open a handoff after the answer; the note that says whether it opened ends the answer."""
    info = await start_handoff_for(runtime, prepared, reason)
    note = text(prepared.language, "handoff_started" if info else "handoff_failed")
    if info is not None:
        handle.put(HandoffPacket(handoff=info))
    handle.put(TokenPacket(text=f"\n\n{note}"))
    return info, note


def _meta(
    knowledge: Knowledge, context: ToolContext, generation: Generation, searched: list[str] | None
) -> dict[str, Any]:
    """What is stored with the answer besides its text: for replays, evaluation, content gaps and a pending
    action. ``kb_ids``: the knowledge bases the answer drew on (its passages'; without passages, those the
    assistant searched, ``*`` for all of the tenant's)."""
    return {
        "query": knowledge.query,
        "retrieved": list(dict.fromkeys(p.hit.document_id for p in knowledge.passages)),
        "kb_ids": list(dict.fromkeys(p.hit.kb_id for p in knowledge.passages))
        or searched
        or [ALL_KNOWLEDGE_BASES],
        "fallbacks": generation.skipped,
        "tools": generation.tool_calls,
        "kb_unavailable": knowledge.kb_unavailable,
        "tools_unavailable": knowledge.tools_unavailable,
        "support": generation.support,
        **(
            {"pending_action": context.pending_action.as_meta()} if context.pending_action is not None else {}
        ),
    }


def _context_passages(passages: list[Passage]) -> list[ContextPassage]:
    return [
        ContextPassage(
            index=p.index,
            chunk_id=p.hit.chunk_id,
            document_id=p.hit.document_id,
            title=p.hit.title,
            text=p.hit.text,
        )
        for p in passages
    ]
