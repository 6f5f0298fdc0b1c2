"""What a provider is given and what it streams back: text deltas, tool events and an answer verdict."""

from __future__ import annotations

import abc
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

from switchboard_chat.tools.service import ToolSpec
from switchboard_shared.contracts.retrieval import SearchHit


@dataclass(slots=True)
class Passage:
    index: int
    hit: SearchHit


@dataclass(slots=True)
class GenerationRequest:
    system_prompt: str
    history: list[tuple[str, str]]
    question: str
    search_query: str
    passages: list[Passage]
    language: str
    tools: list[ToolSpec] = field(default_factory=list)
    kb_unavailable: bool = False
    tools_unavailable: bool = False
    min_support: float = 0.2
    max_tokens: int = 512
    temperature: float = 0.2


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
