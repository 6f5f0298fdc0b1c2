"""What operators answered when the bot could not: each customer question the bot refused, got a thumbs-down
for, or never saw (it came while a human had the conversation), paired with the operator reply that followed
it. When an operator resolves the conversation, each pair goes to retrieval as a suggested curated answer;
nothing reaches customers until an operator approves it there.

A customer message that only asked for a human (the bot answered it by handing off) is not a question, and a
question the bot answered without a thumbs-down is not a gap: an operator's greeting after such messages
pairs with nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import structlog

from switchboard_chat.conversations import repository
from switchboard_chat.conversations.models import MessageRow
from switchboard_chat.runtime import Runtime
from switchboard_shared.contracts.chat import Role
from switchboard_shared.contracts.retrieval import CuratedSuggestionCreate, SuggestionReason
from switchboard_shared.errors import AppError

log = structlog.get_logger(__name__)
MAX_QUESTION_CHARS = 1000
MAX_ANSWER_CHARS = 8000


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


def suggest_later(runtime: Runtime, *, tenant_id: str, conversation_id: str) -> None:
    """``suggest_from`` in the background (the resolution does not wait for retrieval); shutdown waits for
    it like for a running turn."""

    async def run() -> None:
        try:
            await suggest_from(runtime, tenant_id=tenant_id, conversation_id=conversation_id)
        except Exception:
            log.exception("curated_suggestions_failed", conversation_id=conversation_id)

    task = asyncio.create_task(run(), name=f"suggest-{conversation_id}")
    runtime.tasks.add(task)
    task.add_done_callback(runtime.tasks.discard)


async def suggest_from(runtime: Runtime, *, tenant_id: str, conversation_id: str) -> int:
    """Send the resolved conversation's operator answers to retrieval as suggestions; returns how many went.
    Retrieval being down loses them (logged), never the resolution."""
    async with runtime.sessionmaker() as session:
        messages = await repository.messages(session, conversation_id=conversation_id)
        rated_down = await repository.thumbs_down(session, conversation_id=conversation_id)
    pairs = operator_answers(messages, rated_down)
    client = runtime.retrieval()
    sent = 0
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
        except AppError as exc:
            log.warning(
                "curated_suggestion_failed",
                conversation_id=conversation_id,
                code=exc.code,
                error=str(exc)[:300],
            )
    if pairs:
        log.info("curated_suggestions_sent", conversation_id=conversation_id, sent=sent, found=len(pairs))
    return sent
