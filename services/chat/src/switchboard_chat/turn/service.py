"""The turn: one customer message in, the assistant's answer (or a relay to a human) out, as typed packets.

Order of work, under the conversation's lock (so messages of one conversation never interleave, across
replicas): store the customer message and load the recent window (cache, else DB) → if a human owns the
conversation, relay and stop → escalate at once on an explicit request, frustration or a tenant rule →
condense a follow-up into a standalone query → search retrieval → stream from the tenant's provider chain
(tools through integrations) → store the answer, hand off after too many unsupported answers → events.
No DB session is held while retrieval or a provider is working.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from switchboard_chat.assistant import service as assistant_service
from switchboard_chat.conversations import repository
from switchboard_chat.conversations import service as conversations
from switchboard_chat.conversations.models import ConversationRow, MessageRow
from switchboard_chat.conversations.window import RecentWindow, WindowMessage
from switchboard_chat.providers.base import (
    AnswerVerdict,
    GenerationRequest,
    Passage,
    Similarity,
    TextDelta,
    ToolEvent,
)
from switchboard_chat.providers.registry import (
    ProviderAbandoned,
    ProviderRegistry,
    ProviderSelected,
    ProviderSkipped,
)
from switchboard_chat.providers.texts import text
from switchboard_chat.settings import ChatSettings
from switchboard_chat.tools.service import PendingAction, ToolContext, build_tools, transcript_of
from switchboard_chat.turn import escalation
from switchboard_chat.turn.confirmation import is_confirmation
from switchboard_chat.turn.prompt import budget_history, passages_block, system_prompt
from switchboard_chat.turn.query import history_aware_query, search_query
from switchboard_shared.contracts.analytics import EventType
from switchboard_shared.contracts.chat import (
    AssistantSettings,
    Citation,
    CitationPacket,
    ContextPassage,
    ConversationStatus,
    DonePacket,
    EarlierTurn,
    EndUserProfile,
    ErrorPacket,
    HandoffInfo,
    HandoffPacket,
    LatencySplit,
    Message,
    Owner,
    ResetPacket,
    TokenPacket,
    ToolCallPacket,
    TurnResult,
)
from switchboard_shared.contracts.integrations import Handoff, RelayCustomerMessage, StartHandoff
from switchboard_shared.contracts.retrieval import RetrievalClient, SearchRequest, SimilarityRequest
from switchboard_shared.contracts.routes import TENANT_HEADER
from switchboard_shared.deps import EndUser
from switchboard_shared.errors import AppError, ErrorCode
from switchboard_shared.language import detect_language
from switchboard_shared.platform import Platform
from switchboard_shared.stores.base import Lock, LockTimeout, StoreUnavailable

log = structlog.get_logger(__name__)
# ASCII digits only, as the widget links them: "[٣]" is prose there, so it must not become a citation.
CITATION_MARK = re.compile(r"\[([0-9]{1,2})\]")
SIMILARITY_BATCH = 256  # texts per similarity request (the contract's limit)
Packet = (
    TokenPacket | CitationPacket | ToolCallPacket | HandoffPacket | ErrorPacket | ResetPacket | DonePacket
)

_local_locks: dict[str, asyncio.Lock] = {}


@dataclass
class TurnDeps:
    settings: ChatSettings
    platform: Platform
    registry: ProviderRegistry
    window: RecentWindow
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        assert self.platform.sessionmaker is not None
        return self.platform.sessionmaker


@dataclass(slots=True)
class TurnInput:
    tenant_id: str
    conversation_id: str
    text: str
    end_user: EndUser | None = None
    verified: bool | None = None
    client_message_id: str | None = None
    providers: list[str] | None = None
    history: list[EarlierTurn] = field(default_factory=list)
    scope: str | None = None


class ConversationLock:
    """The conversation's lock in the shared lock store, or a per-process lock while that store is down."""

    def __init__(self, deps: TurnDeps, conversation_id: str) -> None:
        self.deps = deps
        self.key = f"chat:conversation:{conversation_id}"
        self.lock: Lock | None = None
        self.local: asyncio.Lock | None = None

    async def acquire(self) -> None:
        settings = self.deps.settings
        try:
            self.lock = await self.deps.platform.stores.locks.acquire(
                self.key, ttl=settings.lock_ttl_seconds, timeout=settings.lock_wait_seconds
            )
        except LockTimeout as exc:
            raise AppError(
                ErrorCode.CONFLICT,
                "The conversation is busy with an earlier message; try again shortly.",
                headers={"Retry-After": "2"},
            ) from exc
        except StoreUnavailable as exc:
            log.warning("conversation_lock_store_unavailable", error=str(exc)[:200])
            self.local = _local_locks.setdefault(self.key, asyncio.Lock())
            await self.local.acquire()

    async def release(self) -> None:
        if self.local is not None:
            self.local.release()
            self.local = None
        if self.lock is not None:
            try:
                await self.deps.platform.stores.locks.release(self.lock)
            except StoreUnavailable as exc:
                log.warning("conversation_lock_release_failed", error=str(exc)[:200])
            self.lock = None

    async def __aenter__(self) -> ConversationLock:
        await self.acquire()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.release()


@dataclass
class Prepared:
    tenant_id: str
    conversation_id: str
    channel: str
    end_user_id: str
    external_key: str | None
    owner: str
    unsupported_streak: int
    verified: bool
    claimed_email: str | None
    claimed_crm_id: str | None
    pending_action: PendingAction | None
    text: str
    user_message: Message
    window: list[WindowMessage]
    assistant: AssistantSettings
    profile: EndUserProfile | None
    chain: list[str]
    language: str
    started: float
    # The caller is an operator or a service (a server or admin key): the turn's result shows the passages
    # the answer was given and its support, for evaluation and debugging.
    operator: bool = False
    earlier: list[WindowMessage] = field(default_factory=list)

    @property
    def context(self) -> list[WindowMessage]:
        """The turns the answer sees: a stateless client's earlier turns (not stored), then the window."""
        return [*self.earlier, *self.window]


class TurnHandle:
    """The packets of one running turn; the turn runs in its own task, so a client that goes away does not
    cut a turn in half (its answer is stored and the lock released either way)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Packet | None] = asyncio.Queue()

    def put(self, packet: Packet) -> None:
        self.queue.put_nowait(packet)

    def close(self) -> None:
        self.queue.put_nowait(None)

    async def packets(self) -> AsyncIterator[Packet]:
        while True:
            packet = await self.queue.get()
            if packet is None:
                return
            yield packet

    async def result(self) -> TurnResult:
        error: ErrorPacket | None = None
        async for packet in self.packets():
            if isinstance(packet, DonePacket):
                return packet.result
            if isinstance(packet, ErrorPacket) and packet.code == "internal_error":
                error = packet
        raise AppError(
            ErrorCode.SERVICE_UNAVAILABLE,
            error.message if error else "The turn did not complete; try again.",
            headers={"Retry-After": "2"},
        )


async def start_turn(deps: TurnDeps, turn: TurnInput) -> TurnHandle:
    """Validate, take the lock and store the customer message; then run the rest in a task."""
    started = time.perf_counter()
    lock = ConversationLock(deps, turn.conversation_id)
    await lock.acquire()
    handle = TurnHandle()
    try:
        prepared = await _prepare(deps, turn, started)
    except BaseException:
        await lock.release()
        raise
    if isinstance(prepared, TurnResult):
        await lock.release()
        handle.put(DonePacket(result=prepared))
        handle.close()
        return handle
    task = asyncio.create_task(_run(deps, prepared, handle, lock), name=f"turn-{turn.conversation_id}")
    deps.tasks.add(task)
    task.add_done_callback(deps.tasks.discard)
    return handle


def _snapshot(row: ConversationRow) -> dict[str, Any]:
    return {
        "tenant_id": row.tenant_id,
        "conversation_id": row.id,
        "channel": row.channel,
        "end_user_id": row.end_user_id,
        "external_key": row.external_key,
        "owner": row.owner,
        "unsupported_streak": row.unsupported_streak,
    }


async def _prepare(deps: TurnDeps, turn: TurnInput, started: float) -> Prepared | TurnResult:
    """Phase one, under the lock: the customer message is stored before anything slow happens.

    ``started`` is when the request reached the turn: waiting for the lock counts in the turn's total."""
    analytics = deps.platform.analytics
    async with deps.sessionmaker() as session, session.begin():
        conversation = await conversations.get_or_404(
            session=session,
            tenant_id=turn.tenant_id,
            conversation_id=turn.conversation_id,
            end_user=turn.end_user,
        )
        if turn.client_message_id:
            existing = await repository.message_by_client_id(
                session, conversation_id=conversation.id, client_message_id=turn.client_message_id
            )
            if existing is not None:
                return await _replay(session, conversation, existing)
        assistant = await assistant_service.load(session=session, tenant_id=turn.tenant_id)
        chain = deps.registry.chain_names(assistant, turn.providers, scope=turn.scope)
        window = await deps.window.load(session, conversation)
        if conversation.status == ConversationStatus.RESOLVED.value:
            conversations.change_status(
                session=session,
                analytics=analytics,
                conversation=conversation,
                status=ConversationStatus.OPEN,
                actor="customer",
                reason="a new customer message reopened the conversation",
            )
        previous = await repository.messages(session, conversation_id=conversation.id, last=1)
        pending = (
            PendingAction.from_meta((previous[0].meta or {}).get("pending_action"))
            if previous and previous[0].role == "assistant"
            else None
        )
        if turn.end_user is not None and turn.end_user.id is not None:
            verified = turn.end_user.verified
        elif turn.verified is not None:
            verified = turn.verified
        else:
            verified = conversation.verified
        user_row = repository.add_message(
            session,
            conversation,
            role="user",
            text=turn.text,
            client_message_id=turn.client_message_id,
            meta={"verified": verified},
        )
        profile_row = await repository.get_profile(
            session, tenant_id=turn.tenant_id, end_user_id=conversation.end_user_id
        )
        await session.flush()
        snapshot = _snapshot(conversation)
        seq = conversation.last_seq
    window = await deps.window.append(conversation.id, seq, window, [user_row])
    analytics.emit(
        EventType.MESSAGE_RECEIVED,
        tenant_id=turn.tenant_id,
        conversation_id=conversation.id,
        end_user_id=conversation.end_user_id,
        channel=conversation.channel,
        properties={"message_id": user_row.id, "chars": len(turn.text), "owner": snapshot["owner"]},
    )
    profile = conversations.profile_of(profile_row)
    claims = turn.end_user if turn.end_user is not None and turn.end_user.verified else None
    return Prepared(
        **snapshot,
        verified=verified,
        claimed_email=claims.email if claims else None,
        claimed_crm_id=claims.crm_id if claims else None,
        pending_action=pending,
        text=turn.text,
        user_message=conversations.message_out(user_row),
        window=window,
        assistant=assistant,
        profile=profile,
        chain=chain,
        language=detect_language(turn.text, assistant.languages),
        started=started,
        operator=turn.end_user is not None and turn.end_user.id is None,
        earlier=[
            WindowMessage(id="", seq=0, role=earlier.role, text=earlier.text)
            for earlier in turn.history[-deps.settings.history_window :]
        ],
    )


async def _replay(session: AsyncSession, conversation: ConversationRow, user_row: MessageRow) -> TurnResult:
    """The same client_message_id again: the stored outcome, without a second answer."""
    reply = await repository.reply_to(session, conversation_id=conversation.id, message_id=user_row.id)
    return TurnResult(
        conversation_id=conversation.id,
        user_message=conversations.message_out(user_row),
        reply=conversations.message_out(reply) if reply else None,
        owner=Owner(conversation.owner),
        latency=LatencySplit(
            retrieval_ms=reply.retrieval_ms or 0.0 if reply else 0.0,
            generation_ms=reply.generation_ms or 0.0 if reply else 0.0,
            total_ms=reply.total_ms or 0.0 if reply else 0.0,
        ),
        sources=sorted({c["document_id"] for c in (reply.citations if reply else [])}),
        retrieved=list((reply.meta or {}).get("retrieved", [])) if reply else [],
    )


async def _run(deps: TurnDeps, prepared: Prepared, handle: TurnHandle, lock: ConversationLock) -> None:
    try:
        if prepared.owner == Owner.HUMAN.value:
            await _relay(deps, prepared)
            handle.put(
                DonePacket(
                    result=TurnResult(
                        conversation_id=prepared.conversation_id,
                        user_message=prepared.user_message,
                        owner=Owner.HUMAN,
                        latency=LatencySplit(total_ms=_ms(prepared.started)),
                    )
                )
            )
            return
        reason = escalation.before_answer(prepared.text, prepared.assistant.escalation)
        if reason is not None:
            await _hand_off_now(deps, prepared, handle, reason)
            return
        if prepared.pending_action is not None and is_confirmation(prepared.text):
            if await _run_confirmed_action(deps, prepared, handle, prepared.pending_action):
                return
        await _answer(deps, prepared, handle)
    except Exception as exc:
        log.error("turn_failed", conversation_id=prepared.conversation_id, exc_info=exc)
        handle.put(
            ErrorPacket(code="internal_error", message="The answer could not be completed; try again.")
        )
    finally:
        await lock.release()
        handle.close()


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 3)


async def _relay(deps: TurnDeps, prepared: Prepared) -> None:
    body = RelayCustomerMessage(
        conversation_id=prepared.conversation_id, message_id=prepared.user_message.id, text=prepared.text
    )
    try:
        await deps.platform.downstream("integrations").json_request(
            "POST",
            "/internal/v1/handoffs/relay",
            json=body.model_dump(mode="json"),
            headers={TENANT_HEADER: prepared.tenant_id},
            idempotent=True,
            timeout=deps.settings.integrations_timeout_seconds,
        )
    except AppError as exc:
        # The message is stored; operators see it in the conversation even when the relay is late.
        log.warning("relay_failed", conversation_id=prepared.conversation_id, error=exc.message)


async def _start_handoff(deps: TurnDeps, prepared: Prepared, reason: str) -> HandoffInfo | None:
    return await start_handoff(
        deps,
        tenant_id=prepared.tenant_id,
        conversation_id=prepared.conversation_id,
        channel=prepared.channel,
        end_user_id=prepared.end_user_id,
        external_key=prepared.external_key,
        window=prepared.context,
        profile=prepared.profile,
        create_ticket=prepared.assistant.escalation.create_ticket,
        reason=reason,
    )


async def start_handoff(
    deps: TurnDeps,
    *,
    tenant_id: str,
    conversation_id: str,
    channel: str,
    end_user_id: str,
    external_key: str | None,
    window: list[WindowMessage],
    profile: EndUserProfile | None,
    create_ticket: bool,
    reason: str,
) -> HandoffInfo | None:
    """Open a handoff (and a ticket with the transcript) in integrations; None when it cannot be reached."""
    body = StartHandoff(
        conversation_id=conversation_id,
        channel=channel,  # type: ignore[arg-type]
        end_user_id=end_user_id,
        external_key=external_key,
        reason=reason[:1000],
        transcript=transcript_of(
            [(m.role, m.text) for m in window if m.role in ("user", "assistant", "operator")]
        ),
        profile=profile,
        create_ticket=create_ticket,
        notify_chat=False,  # chat switches the owner itself, in the same transaction as the answer
    )
    try:
        payload = await deps.platform.downstream("integrations").json_request(
            "POST",
            "/internal/v1/handoffs",
            json=body.model_dump(mode="json"),
            headers={TENANT_HEADER: tenant_id},
            idempotent=False,
            timeout=deps.settings.integrations_timeout_seconds,
        )
        handoff = Handoff.model_validate(payload)
    except (AppError, ValueError) as exc:
        log.warning("handoff_failed", conversation_id=conversation_id, error=str(exc)[:300])
        return None
    return HandoffInfo(
        reason=reason, handoff_id=handoff.id, ticket_id=handoff.ticket.id if handoff.ticket else None
    )


async def _hand_off_now(deps: TurnDeps, prepared: Prepared, handle: TurnHandle, reason: str) -> None:
    info = await _start_handoff(deps, prepared, reason)
    answer = text(prepared.language, "handoff_started" if info else "handoff_failed")
    if info is not None:
        handle.put(HandoffPacket(handoff=info))
    await _reply_with_system_text(
        deps,
        prepared,
        handle,
        answer,
        generation_ms=0.0,
        handoff=info,
        handoff_reason=reason,
        meta={"escalation": reason},
    )


def _next_provider(chain: list[str], failed: str) -> str | None:
    """The provider the chain falls through to after ``failed`` (None when it was the last)."""
    if failed in chain and chain.index(failed) + 1 < len(chain):
        return chain[chain.index(failed) + 1]
    return None


async def _search(deps: TurnDeps, prepared: Prepared, query: str) -> tuple[list[Passage], bool]:
    request = SearchRequest(
        query=query[:4000],
        kb_ids=prepared.assistant.kb_ids,
        top_k=deps.settings.retrieval_top_k,
        language=prepared.language,
    )
    try:
        response = await _retrieval(deps).search(tenant_id=prepared.tenant_id, request=request)
    except (AppError, ValueError) as exc:
        log.warning("retrieval_unavailable", conversation_id=prepared.conversation_id, error=str(exc)[:300])
        return [], True
    return [Passage(index=i, hit=hit) for i, hit in enumerate(response.hits, start=1)], False


def _retrieval(deps: TurnDeps) -> RetrievalClient:
    return RetrievalClient(
        deps.platform.downstream("retrieval"), timeout=deps.settings.retrieval_timeout_seconds
    )


def _similarity(deps: TurnDeps, tenant_id: str) -> Similarity:
    """The extractive answerer's view of meaning: retrieval compares its sentences with the question in the
    knowledge base's embedding space (None when retrieval cannot, so shared words decide alone)."""
    client = _retrieval(deps)

    async def compare(kb_id: str, queries: list[str], texts: list[str]) -> list[list[float]] | None:
        rows: list[list[float]] = [[] for _ in queries]
        try:
            for start in range(0, len(texts), SIMILARITY_BATCH):
                batch = texts[start : start + SIMILARITY_BATCH]
                response = await client.similarity(
                    tenant_id=tenant_id, request=SimilarityRequest(kb_id=kb_id, queries=queries, texts=batch)
                )
                if len(response.scores) != len(queries) or any(len(r) != len(batch) for r in response.scores):
                    raise ValueError("similarity answered a matrix of the wrong shape")
                for row, scores in zip(rows, response.scores, strict=True):
                    row.extend(scores)
        except (AppError, ValueError) as exc:
            log.warning("similarity_unavailable", kb_id=kb_id, error=str(exc)[:300])
            return None
        return rows

    return compare


def cited(answer: str, passages: list[Passage]) -> list[Citation]:
    """Citations for the passages the answer actually marks, in order of first mention."""
    by_index = {p.index: p for p in passages}
    seen: list[int] = []
    for match in CITATION_MARK.finditer(answer):
        index = int(match.group(1))
        if index in by_index and index not in seen:
            seen.append(index)
    return [
        Citation(
            index=i,
            chunk_id=by_index[i].hit.chunk_id,
            document_id=by_index[i].hit.document_id,
            title=by_index[i].hit.title,
            url=by_index[i].hit.url,
            snippet=by_index[i].hit.snippet[:300],
        )
        for i in seen
    ]


async def _answer(deps: TurnDeps, prepared: Prepared, handle: TurnHandle) -> None:
    settings = deps.settings
    analytics = deps.platform.analytics
    history_window = prepared.context[:-1]
    query = search_query(prepared.text, history_window)
    if query != prepared.text and settings.query_rewrite_timeout_seconds > 0:
        # A follow-up: the chain's language model, if it has one, writes the standalone question.
        rewritten = await history_aware_query(
            deps.registry,
            prepared.chain,
            prepared.assistant,
            prepared.text,
            budget_history(history_window, settings.history_token_budget),
            timeout=settings.query_rewrite_timeout_seconds,
        )
        query = rewritten or query
    retrieval_started = time.perf_counter()
    passages, kb_unavailable = await _search(deps, prepared, query)
    retrieval_ms = _ms(retrieval_started)

    context = _tool_context(deps, prepared)
    tools_unavailable = context.integrations.breaker_state == "open"
    tools = [] if tools_unavailable else build_tools(context, list(prepared.assistant.tools))
    request = GenerationRequest(
        system_prompt=system_prompt(
            prepared.assistant,
            language=prepared.language,
            kb_unavailable=kb_unavailable,
            tools_unavailable=tools_unavailable,
            verified=prepared.verified,
        ),
        history=budget_history(history_window, settings.history_token_budget),
        question=prepared.text,
        context_prompt=passages_block(passages),
        search_query=query,
        passages=passages,
        language=prepared.language,
        tools=tools,
        kb_unavailable=kb_unavailable,
        tools_unavailable=tools_unavailable,
        verified=prepared.verified,
        min_support=settings.min_support_score,
        lexical_min_support=settings.lexical_min_support_score,
        cross_language_discount=settings.cross_language_support_discount,
        similarity=None if kb_unavailable or not passages else _similarity(deps, prepared.tenant_id),
        max_tokens=settings.max_output_tokens,
        temperature=settings.temperature,
    )
    parts: list[str] = []
    provider: str | None = None
    verdict: bool | None = None
    support: float | None = None
    tool_calls: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    generation_started = time.perf_counter()
    try:
        async with asyncio.timeout(settings.provider_total_timeout_seconds):
            async for event in deps.registry.stream(prepared.chain, prepared.assistant, request):
                if isinstance(event, TextDelta):
                    parts.append(event.text)
                    handle.put(TokenPacket(text=event.text))
                elif isinstance(event, ToolEvent):
                    status = event.status if event.status in ("started", "ok", "error", "refused") else "ok"
                    handle.put(ToolCallPacket(name=event.name, arguments=event.arguments, status=status))  # type: ignore[arg-type]
                    if event.status != "started":
                        tool_calls.append({"name": event.name, "status": event.status})
                        analytics.emit(
                            EventType.TOOL_CALLED,
                            tenant_id=prepared.tenant_id,
                            conversation_id=prepared.conversation_id,
                            end_user_id=prepared.end_user_id,
                            channel=prepared.channel,
                            properties={
                                "tool": event.name,
                                "status": event.status,
                                "ok": event.status == "ok",
                                "verified": prepared.verified,
                            },
                        )
                elif isinstance(event, AnswerVerdict):
                    verdict = event.no_answer
                    support = event.support
                elif isinstance(event, ProviderSelected):
                    provider = event.name
                elif isinstance(event, ProviderSkipped | ProviderAbandoned):
                    if isinstance(event, ProviderAbandoned):
                        parts.clear()
                        verdict = None
                        support = None
                        handle.put(ResetPacket(reason=event.reason))
                    skipped.append({"provider": event.name, "reason": event.reason})
                    analytics.emit(
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
    except Exception as exc:
        log.warning(
            "generation_interrupted", provider=provider, error=f"{type(exc).__name__}: {str(exc)[:200]}"
        )
        handle.put(ErrorPacket(code="generation_interrupted", message="The answer was cut off."))
    generation_ms = _ms(generation_started)

    answer = "".join(parts).strip()
    if not answer:
        answer = text(prepared.language, "kb_down" if kb_unavailable else "no_answer")
        handle.put(TokenPacket(text=answer))
        verdict = True
    citations = cited(answer, passages)
    no_answer = verdict if verdict is not None else (not passages and not tool_calls)
    streak = prepared.unsupported_streak + 1 if no_answer else 0
    limit = prepared.assistant.escalation.max_unsupported_answers or settings.escalate_after_unsupported
    reason = context.handoff_reason or (
        f"{streak} answers in a row without knowledge-base support" if streak >= limit else None
    )
    info: HandoffInfo | None = None
    if reason is not None:
        info = await _start_handoff(deps, prepared, reason)
        note = text(prepared.language, "handoff_started" if info else "handoff_failed")
        if info is not None:
            handle.put(HandoffPacket(handoff=info))
        handle.put(TokenPacket(text=f"\n\n{note}"))
        answer = f"{answer}\n\n{note}"
    await _finish(
        deps,
        prepared,
        handle,
        answer=answer,
        citations=citations,
        provider=provider,
        no_answer=no_answer,
        retrieval_ms=retrieval_ms,
        generation_ms=generation_ms,
        handoff=info,
        handoff_reason=reason,
        streak=0 if info else streak,
        meta={
            "query": query,
            "retrieved": list(dict.fromkeys(p.hit.document_id for p in passages)),
            "fallbacks": skipped,
            "tools": tool_calls,
            "kb_unavailable": kb_unavailable,
            "tools_unavailable": tools_unavailable,
            "support": support,
            **(
                {"pending_action": context.pending_action.as_meta()}
                if context.pending_action is not None
                else {}
            ),
        },
        crm_id=context.crm_id,
        context=[
            ContextPassage(
                index=p.index,
                chunk_id=p.hit.chunk_id,
                document_id=p.hit.document_id,
                title=p.hit.title,
                text=p.hit.text,
            )
            for p in passages
        ]
        if prepared.operator
        else None,
    )


def _tool_context(deps: TurnDeps, prepared: Prepared) -> ToolContext:
    return ToolContext(
        integrations=deps.platform.downstream("integrations"),
        tenant_id=prepared.tenant_id,
        conversation_id=prepared.conversation_id,
        message_id=prepared.user_message.id,
        end_user_id=prepared.end_user_id,
        verified=prepared.verified,
        profile=prepared.profile,
        claimed_email=prepared.claimed_email,
        claimed_crm_id=prepared.claimed_crm_id,
        transcript=transcript_of([(m.role, m.text) for m in prepared.context if m.role != "system"]),
        timeout=deps.settings.integrations_timeout_seconds,
    )


async def _run_confirmed_action(
    deps: TurnDeps, prepared: Prepared, handle: TurnHandle, action: PendingAction
) -> bool:
    """The customer said yes to the action the previous answer proposed: run it (the turn does, not a
    model) and say how it went. False when the tool is no longer this user's to use (answered normally)."""
    context = _tool_context(deps, prepared)
    enabled: list[str] = [name for name in prepared.assistant.tools if name == action.tool]
    tools = build_tools(context, enabled)
    if not tools:
        return False
    handle.put(ToolCallPacket(name=action.tool, arguments=action.arguments, status="started"))
    started = time.perf_counter()
    outcome = await tools[0].run(action.arguments, confirmed=True)
    status = "ok" if outcome.status == "not_found" else outcome.status
    handle.put(ToolCallPacket(name=action.tool, arguments=action.arguments, status=status))  # type: ignore[arg-type]
    deps.platform.analytics.emit(
        EventType.TOOL_CALLED,
        tenant_id=prepared.tenant_id,
        conversation_id=prepared.conversation_id,
        end_user_id=prepared.end_user_id,
        channel=prepared.channel,
        properties={"tool": action.tool, "status": status, "ok": status == "ok", "verified": True},
    )
    ticket = outcome.data.get("ticket") if outcome.status == "ok" else None
    if isinstance(ticket, dict):
        answer = text(
            prepared.language, "ticket_created", ticket=ticket.get("external_id") or ticket.get("id")
        )
    else:
        answer = text(prepared.language, "tools_down")
    await _reply_with_system_text(
        deps,
        prepared,
        handle,
        answer,
        generation_ms=_ms(started),
        handoff=None,
        handoff_reason=None,
        meta={"tools": [{"name": action.tool, "status": status}], "confirmed_action": action.tool},
    )
    return True


async def _reply_with_system_text(
    deps: TurnDeps,
    prepared: Prepared,
    handle: TurnHandle,
    answer: str,
    *,
    generation_ms: float,
    handoff: HandoffInfo | None,
    handoff_reason: str | None,
    meta: dict[str, Any],
) -> None:
    """Answer with one of the product's own texts (no passages, no provider) and finish the turn."""
    handle.put(TokenPacket(text=answer))
    await _finish(
        deps,
        prepared,
        handle,
        answer=answer,
        citations=[],
        provider=None,
        no_answer=False,
        retrieval_ms=0.0,
        generation_ms=generation_ms,
        handoff=handoff,
        handoff_reason=handoff_reason,
        streak=prepared.unsupported_streak,
        meta=meta,
    )


async def _finish(
    deps: TurnDeps,
    prepared: Prepared,
    handle: TurnHandle,
    *,
    answer: str,
    citations: list[Citation],
    provider: str | None,
    no_answer: bool,
    retrieval_ms: float,
    generation_ms: float,
    handoff: HandoffInfo | None,
    handoff_reason: str | None,
    streak: int,
    meta: dict[str, Any],
    crm_id: str | None = None,
    context: list[ContextPassage] | None = None,
) -> None:
    """Store the answer and the owner change, update the window, emit events, send citations and done."""
    analytics = deps.platform.analytics
    total_ms = _ms(prepared.started)
    async with deps.sessionmaker() as session, session.begin():
        conversation = await repository.get_conversation(
            session, tenant_id=prepared.tenant_id, conversation_id=prepared.conversation_id
        )
        if conversation is None:
            raise AppError(ErrorCode.NOT_FOUND, "The conversation was deleted during the turn.")
        reply = repository.add_message(
            session,
            conversation,
            role="assistant",
            text=answer,
            citations=[c.model_dump(mode="json") for c in citations],
            provider=provider,
            no_answer=no_answer,
            retrieval_ms=retrieval_ms,
            generation_ms=generation_ms,
            total_ms=total_ms,
            reply_to=prepared.user_message.id,
            meta=meta,
        )
        conversation.unsupported_streak = streak
        if handoff is not None:
            conversations.change_owner(
                session=session,
                analytics=analytics,
                conversation=conversation,
                owner=Owner.HUMAN,
                actor="bot",
                reason=handoff_reason or handoff.reason,
                handoff_id=handoff.handoff_id,
                ticket_id=handoff.ticket_id,
            )
        if crm_id and prepared.verified and (prepared.profile is None or prepared.profile.crm_id != crm_id):
            await repository.upsert_profile(
                session,
                tenant_id=prepared.tenant_id,
                end_user_id=prepared.end_user_id,
                values={"crm_id": crm_id},
            )
        await session.flush()
        seq = conversation.last_seq
        owner = Owner(conversation.owner)
    await deps.window.append(prepared.conversation_id, seq, prepared.window, [reply])
    total_ms = _ms(prepared.started)
    sources = sorted({c.document_id for c in citations})
    analytics.emit(
        EventType.ANSWER_SENT,
        tenant_id=prepared.tenant_id,
        conversation_id=prepared.conversation_id,
        end_user_id=prepared.end_user_id,
        channel=prepared.channel,
        properties={
            "message_id": reply.id,
            "provider": provider,
            "no_answer": no_answer,
            "sources": sources,
            "question": prepared.text,
            "latency_ms": {"retrieval": retrieval_ms, "generation": generation_ms, "total": total_ms},
            "fallbacks": len(meta.get("fallbacks", [])),
            "handoff": handoff is not None,
            "language": prepared.language,
        },
    )
    for citation in citations:
        handle.put(CitationPacket(citation=citation))
    handle.put(
        DonePacket(
            result=TurnResult(
                conversation_id=prepared.conversation_id,
                user_message=prepared.user_message,
                reply=conversations.message_out(reply),
                owner=owner,
                handoff=handoff,
                latency=LatencySplit(
                    retrieval_ms=retrieval_ms, generation_ms=generation_ms, total_ms=total_ms
                ),
                sources=sources,
                retrieved=meta.get("retrieved", []),
                context=context,
                support=meta.get("support") if context is not None else None,
            )
        )
    )


async def request_handoff(
    deps: TurnDeps, *, tenant_id: str, conversation_id: str, end_user: EndUser | None, reason: str
) -> HandoffInfo:
    """The customer pressed "talk to a human": open the handoff and give the conversation to a human."""
    async with ConversationLock(deps, conversation_id):
        async with deps.sessionmaker() as session, session.begin():
            conversation = await conversations.get_or_404(
                session=session, tenant_id=tenant_id, conversation_id=conversation_id, end_user=end_user
            )
            if conversation.owner == Owner.HUMAN.value:
                return HandoffInfo(
                    reason="already with a human",
                    handoff_id=conversation.handoff_id,
                    ticket_id=conversation.ticket_id,
                )
            window = await deps.window.load(session, conversation)
            profile = conversations.profile_of(
                await repository.get_profile(
                    session, tenant_id=tenant_id, end_user_id=conversation.end_user_id
                )
            )
            assistant = await assistant_service.load(session=session, tenant_id=tenant_id)
            snapshot = _snapshot(conversation)
        info = await start_handoff(
            deps,
            tenant_id=tenant_id,
            conversation_id=conversation_id,
            channel=snapshot["channel"],
            end_user_id=snapshot["end_user_id"],
            external_key=snapshot["external_key"],
            window=window,
            profile=profile,
            create_ticket=assistant.escalation.create_ticket,
            reason=reason,
        )
        if info is None:
            raise AppError(
                ErrorCode.UPSTREAM_UNAVAILABLE,
                "The support team cannot be reached right now; try again shortly.",
                headers={"Retry-After": "5"},
            )
        async with deps.sessionmaker() as session, session.begin():
            conversation = await conversations.get_or_404(
                session=session, tenant_id=tenant_id, conversation_id=conversation_id
            )
            conversations.change_owner(
                session=session,
                analytics=deps.platform.analytics,
                conversation=conversation,
                owner=Owner.HUMAN,
                actor="customer",
                reason=reason,
                handoff_id=info.handoff_id,
                ticket_id=info.ticket_id,
            )
        return info


async def post_operator_message(
    deps: TurnDeps,
    *,
    tenant_id: str,
    conversation_id: str,
    text_: str,
    operator_id: str,
    idempotency_key: str | None,
) -> Message:
    """An operator's reply (from integrations): stored in order with the customer's messages."""
    async with ConversationLock(deps, conversation_id):
        async with deps.sessionmaker() as session, session.begin():
            conversation = await conversations.get_or_404(
                session=session, tenant_id=tenant_id, conversation_id=conversation_id
            )
            if idempotency_key:
                existing = await repository.message_by_client_id(
                    session, conversation_id=conversation_id, client_message_id=idempotency_key
                )
                if existing is not None:
                    return conversations.message_out(existing)
            window = await deps.window.load(session, conversation)
            row = repository.add_message(
                session,
                conversation,
                role="operator",
                text=text_,
                operator_id=operator_id,
                client_message_id=idempotency_key,
            )
            await session.flush()
            seq = conversation.last_seq
            channel = conversation.channel
            end_user_id = conversation.end_user_id
        await deps.window.append(conversation_id, seq, window, [row])
    deps.platform.analytics.emit(
        EventType.OPERATOR_REPLIED,
        tenant_id=tenant_id,
        conversation_id=conversation_id,
        end_user_id=end_user_id,
        channel=channel,
        properties={"operator_id": operator_id, "message_id": row.id},
    )
    return conversations.message_out(row)
