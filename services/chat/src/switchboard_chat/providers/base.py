"""What a provider is given and what it streams back: text deltas, tool events and an answer verdict."""

from __future__ import annotations

import abc
import re
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from switchboard_chat.tools.service import ToolSpec
from switchboard_shared.contracts.retrieval import QueryWords, SearchHit


@dataclass(slots=True)
class Passage:
    index: int
    hit: SearchHit


# The tags that fence the passages in a prompt (``turn/prompt.py``). Passages are stripped of them before
# they are quoted, so an answer that holds one has echoed its prompt.
FENCE = re.compile(r"</?\s*(?:passages|passage)\b[^>]*>", re.IGNORECASE)


# Compares texts with queries in a knowledge base's embedding space: (kb_id, queries, texts) → one row of
# cosine similarities per query, or None when that cannot be done right now.
Similarity = Callable[[str, list[str], list[str]], Awaitable[list[list[float]] | None]]


@dataclass(slots=True)
class GenerationRequest:
    system_prompt: str
    history: list[tuple[str, str]]
    question: str
    search_query: str
    passages: list[Passage]
    language: str
    # The search query as retrieval searched it when its spelling correction changed a word ("cancle a
    # bulid" searched as "cancel a build"); None when it was searched as written.
    corrected_query: str | None = None
    # How common the searched query's words are in the knowledge base (retrieval's count; None: not known).
    query_words: QueryWords | None = None
    context_prompt: str = ""  # the passages fenced as untrusted data, sent with the customer's question
    tools: list[ToolSpec] = field(default_factory=list)
    kb_unavailable: bool = False
    tools_unavailable: bool = False
    # A verified end user: personal-data tools are bound only then.
    verified: bool = False
    min_support: float = 0.2
    lexical_min_support: float = 0.2
    cross_language_discount: float = 0.0
    similarity: Similarity | None = None
    max_tokens: int = 512
    temperature: float = 0.2

    def user_turn(self) -> str:
        """The customer's last turn as a model sees it: the fenced passages, then the question."""
        if not self.context_prompt:
            return self.question
        return f"{self.context_prompt}\n\nCustomer's message:\n{self.question}"


@dataclass(slots=True)
class TextDelta:
    text: str


@dataclass(slots=True)
class ToolEvent:
    name: str
    arguments: dict[str, Any]
    status: str
    result: Any = None


@dataclass(slots=True)
class AnswerVerdict:
    """A provider's own judgement that the passages did not support an answer."""

    no_answer: bool
    support: float | None = None  # how well the passages support the answer (0..1), when the provider knows


GenerationEvent = TextDelta | ToolEvent | AnswerVerdict


class ChatProvider(abc.ABC):
    name: str
    key: str
    first_token_timeout: float

    @abc.abstractmethod
    def stream(self, request: GenerationRequest) -> AsyncGenerator[GenerationEvent, None]:
        """Stream one answer; raising before the first event lets the next provider of the chain try."""

    async def close(self) -> None:
        return None
