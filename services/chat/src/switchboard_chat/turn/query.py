"""The search query of a turn: a follow-up such as "and how much is it?" borrows the words of the
conversation's earlier user turns, so retrieval gets a standalone query (offline, no model needed); when the
tenant's chain has a language model, that model rewrites the follow-up as a standalone question instead."""

from __future__ import annotations

import asyncio
import re

import structlog
from aiobreaker import CircuitBreakerState
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from switchboard_chat.conversations.window import WindowMessage
from switchboard_chat.providers.extractive import terms
from switchboard_chat.providers.langchain import LangChainProvider
from switchboard_chat.providers.registry import ProviderRegistry
from switchboard_shared.contracts.chat import AssistantSettings
from switchboard_shared.errors import AppError

log = structlog.get_logger(__name__)

FOLLOW_UP = re.compile(
    r"\b(it|its|that|this|those|these|they|them|there|same|also|what about|and|how about|more)\b"
    r"|(?:^|\s)(это|этот|эта|этом|его|её|ее|их|там|тоже|так|а если|а как|а что|подробнее"
    r"|он|она|оно|они|него|неё|нее|нему|ней|ним|них|нём|нем)(?:\s|$|[?,.!])",
    re.IGNORECASE,
)
# A question of this many content words or fewer rarely names its topic ("and on the paid one?"); one of
# three or more is taken as standing on its own, so a change of subject is not searched with the old one.
SHORT_QUESTION_TERMS = 2
# How many earlier user turns a chain of follow-ups may borrow from.
MAX_TURNS_BORROWED = 2


def is_follow_up(question: str) -> bool:
    return len(terms(question)) <= SHORT_QUESTION_TERMS or FOLLOW_UP.search(question) is not None


def search_query(question: str, history: list[WindowMessage]) -> str:
    """A standalone search query: a short or pronoun-led follow-up borrows the content words of the user
    turns before it, newest first, going back past the previous turn only while that one was a follow-up
    too ("How do I add a domain?" → "And the certificate?" → "How long does it take?")."""
    if not is_follow_up(question):
        return question
    earlier = [m.text for m in reversed(history) if m.role == "user"][:MAX_TURNS_BORROWED]
    lowered = question.lower()
    borrowed: list[str] = []
    for previous in earlier:
        for word in content_words(previous):
            if word.lower() not in lowered and word not in borrowed:
                borrowed.append(word)
        if not is_follow_up(previous):
            break
    if not borrowed:
        return question
    return f"{question} {' '.join(borrowed)}"[:1000]


def content_words(value: str) -> list[str]:
    keep = set(terms(value))
    return [w for w in re.findall(r"\w+", value) if (w.lower()[:5] if len(w) > 5 else w.lower()) in keep]


# LangChain's history-aware retriever prompt (create_history_aware_retriever), told to keep the language.
CONTEXTUALIZE_PROMPT = (
    "Given a chat history and the latest user question which might reference context in the chat history, "
    "formulate a standalone question which can be understood without the chat history. Do NOT answer the "
    "question, just reformulate it if needed and otherwise return it as is. Write it in the language of the "
    "latest user question."
)


async def history_aware_query(
    registry: ProviderRegistry,
    names: list[str],
    assistant: AssistantSettings,
    question: str,
    history: list[tuple[str, str]],
    *,
    timeout: float,
) -> str | None:
    """The follow-up rewritten as a standalone question by the first language model of the tenant's chain
    (LangChain's history-aware retriever pattern), or None: no model in the chain, its breaker open, or no
    usable answer within ``timeout``; the offline query is used then."""
    for name in names:
        if name == "extractive":
            continue
        try:
            provider = registry.get(name, assistant.provider_configs.get(name))  # type: ignore[call-overload]
        except AppError:
            continue
        if not isinstance(provider, LangChainProvider):
            continue
        if registry.breaker(provider.key).current_state == CircuitBreakerState.OPEN:
            return None
        messages: list[BaseMessage] = [SystemMessage(CONTEXTUALIZE_PROMPT)]
        messages += [HumanMessage(text) if role == "user" else AIMessage(text) for role, text in history]
        messages.append(HumanMessage(question))
        try:
            text = await asyncio.wait_for(_complete(provider, messages), timeout=timeout)
        except Exception as exc:  # any failure of the model leaves the offline query in place
            log.warning("history_aware_query_failed", provider=name, error=str(exc)[:200])
            return None
        rewritten = " ".join(text.split())
        return rewritten[:1000] if rewritten else None
    return None


async def _complete(provider: LangChainProvider, messages: list[BaseMessage]) -> str:
    parts = [chunk.text async for chunk in provider.model.astream(messages) if isinstance(chunk.text, str)]
    return "".join(parts)
