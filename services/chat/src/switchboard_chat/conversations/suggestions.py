"""What operators answered when the bot could not: each customer question the bot refused, got a thumbs-down
for, or never saw (it came while a human had the conversation), paired with the operator reply that followed
it. When an operator resolves the conversation, each pair goes to retrieval as a suggested curated answer;
nothing reaches customers until an operator approves it there.

Delivery goes through an outbox (``chat_suggestion_outbox``), written in the transaction that resolves the
conversation: the first attempt runs right after the resolution, and a background loop retries what retrieval
could not take (down, overloaded) with a doubling wait, on whichever replica gets to it first, also after a
restart. Retrieval records each suggestion once per conversation and question, so an attempt repeated after a
lost answer adds nothing.

A customer message that only asked for a human (the bot answered it by handing off) is not a question, and a
question the bot answered without a thumbs-down is not a gap: an operator's greeting after such messages
pairs with nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import structlog

from switchboard_chat.conversations import repository
from switchboard_chat.conversations.models import MessageRow, utcnow
from switchboard_chat.metrics import CURATED_SUGGESTIONS
from switchboard_chat.runtime import Runtime
from switchboard_shared.contracts.chat import Role
from switchboard_shared.contracts.retrieval import CuratedSuggestionCreate, SuggestionReason
from switchboard_shared.errors import AppError

log = structlog.get_logger(__name__)
MAX_QUESTION_CHARS = 1000
MAX_ANSWER_CHARS = 8000
BATCH = 20  # outbox entries taken per look
# An attempt holds its entry this long; past it, another replica (or this one) may try again.
LEASE = timedelta(seconds=120)


@dataclass(frozen=True, slots=True)
class OperatorAnswer:
    question: str
    answer: str
    reason: SuggestionReason


def operator_answers(messages: Sequence[MessageRow], rated_down: set[str]) -> list[OperatorAnswer]:
    """(question, operator reply, why the bot did not answer it) pairs of a conversation, oldest first."""
    out: list[OperatorAnswer] = []
    question: tuple[str, SuggestionReason] | None = None
    i = 0
    while i < len(messages):
        message = messages[i]
        if message.role == Role.OPERATOR.value:
            run = []
            while i < len(messages) and messages[i].role == Role.OPERATOR.value:
                run.append(messages[i].text.strip())
                i += 1
            answer = "\n\n".join(text for text in run if text)
            if question is not None and answer:
                out.append(OperatorAnswer(question[0], answer[:MAX_ANSWER_CHARS], question[1]))
            question = None
            continue
        if message.role == Role.USER.value and message.text.strip():
            reply = messages[i + 1] if i + 1 < len(messages) else None
            bot_reply = reply if reply is not None and reply.role == Role.ASSISTANT.value else None
            if bot_reply is None:
                question = (message.text.strip()[:MAX_QUESTION_CHARS], "handoff")
            elif (bot_reply.meta or {}).get("escalation"):
                pass  # asked for a human: the question, if any, is still the earlier one
            elif bot_reply.no_answer:
                question = (message.text.strip()[:MAX_QUESTION_CHARS], "no_answer")
            elif bot_reply.id in rated_down:
                question = (message.text.strip()[:MAX_QUESTION_CHARS], "thumbs_down")
            else:
                question = None  # answered: not a gap
        i += 1
    return out


def send_later(runtime: Runtime, *, conversation_id: str) -> None:
    """Attempt the resolved conversation's outbox entry in the background (the resolution does not wait for
    retrieval)."""

    async def run() -> None:
        try:
            await deliver(runtime, conversation_id=conversation_id)
        except Exception:
            log.exception("curated_suggestions_failed", conversation_id=conversation_id)

    runtime.spawn(run(), name=f"suggest-{conversation_id}")


async def deliver(runtime: Runtime, *, conversation_id: str) -> bool | None:
    """One attempt at a due outbox entry: send the conversation's operator answers to retrieval, then remove
    the entry, or schedule the next attempt if retrieval could not take them all. True when everything went,
    False when it is to be retried, None when the entry was not due (or another replica has it)."""
    lease_until = utcnow() + LEASE
    async with runtime.sessionmaker() as session, session.begin():
        entry = await repository.claim_suggestions(
            session, conversation_id=conversation_id, lease_until=lease_until
        )
        if entry is None:
            return None
        tenant_id, attempts = entry.tenant_id, entry.attempts
        messages = await repository.messages(session, conversation_id=conversation_id)
        rated_down = await repository.thumbs_down(session, conversation_id=conversation_id)
    pairs = operator_answers(messages, rated_down)
    error = await _send(runtime, tenant_id=tenant_id, conversation_id=conversation_id, pairs=pairs)
    async with runtime.sessionmaker() as session, session.begin():
        if error is None:
            await repository.suggestions_sent(
                session, conversation_id=conversation_id, lease_until=lease_until
            )
        else:
            wait = min(
                runtime.settings.suggestion_retry_seconds * 2**attempts,
                runtime.settings.suggestion_retry_max_seconds,
            )
            await repository.suggestions_failed(
                session,
                conversation_id=conversation_id,
                lease_until=lease_until,
                attempts=attempts + 1,
                retry_at=utcnow() + timedelta(seconds=wait),
                error=error,
            )
            CURATED_SUGGESTIONS.labels("retry").inc()
            log.warning(
                "curated_suggestions_retry",
                conversation_id=conversation_id,
                attempts=attempts + 1,
                retry_in_seconds=round(wait, 1),
                error=error[:300],
            )
    return error is None


async def _send(
    runtime: Runtime, *, tenant_id: str, conversation_id: str, pairs: list[OperatorAnswer]
) -> str | None:
    """Send every pair; the first error worth another attempt (retrieval down, overloaded), or None. A pair
    retrieval refuses for good (a 4xx) is logged and dropped."""
    client = runtime.retrieval()
    sent = 0
    retry: str | None = None
    for pair in pairs:
        try:
            await client.suggest_curated(
                tenant_id=tenant_id,
                suggestion=CuratedSuggestionCreate(
                    question=pair.question,
                    answer=pair.answer,
                    conversation_id=conversation_id,
                    reason=pair.reason,
                ),
            )
            sent += 1
            CURATED_SUGGESTIONS.labels("sent").inc()
        except AppError as exc:
            if exc.status >= 500 or exc.status in (408, 429):
                retry = retry or f"{exc.code}: {exc}"
            else:
                CURATED_SUGGESTIONS.labels("refused").inc()
                log.warning(
                    "curated_suggestion_refused",
                    conversation_id=conversation_id,
                    code=exc.code,
                    error=str(exc)[:300],
                )
    if pairs:
        log.info("curated_suggestions_sent", conversation_id=conversation_id, sent=sent, found=len(pairs))
    return retry


async def run_outbox(runtime: Runtime) -> None:
    """The background loop: every ``suggestion_retry_seconds``, attempt the outbox entries that are due."""
    interval = runtime.settings.suggestion_retry_seconds
    while True:
        await asyncio.sleep(interval)
        try:
            async with runtime.sessionmaker() as session:
                due = [
                    entry.conversation_id for entry in await repository.due_suggestions(session, limit=BATCH)
                ]
            for conversation_id in due:
                await deliver(runtime, conversation_id=conversation_id)
        except Exception:  # the database or retrieval unreachable: the next look tries again
            log.exception("curated_suggestions_outbox_failed")
