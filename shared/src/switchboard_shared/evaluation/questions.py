"""The question file: one JSON object per line (id, question, history, kind, expected_sources, key_phrases)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Kind = Literal["single", "detail", "unanswerable", "followup"]


class Question(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1)
    question: str = Field(min_length=1)
    history: list[str] = Field(default_factory=list)
    kind: Kind = "single"
    expected_sources: list[str] = Field(default_factory=list)
    key_phrases: list[str] = Field(default_factory=list)


class QuestionFileError(ValueError):
    pass


def load_questions(path: Path) -> list[Question]:
    return parse_questions(path.read_text(encoding="utf-8"), source=str(path))


def parse_questions(text: str, *, source: str = "questions") -> list[Question]:
    """The questions of a JSON-lines text; QuestionFileError names the line of the first bad one."""
    questions: list[Question] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            question = Question.model_validate(json.loads(line))
        except (ValueError, TypeError) as exc:
            raise QuestionFileError(f"{source}:{number}: {exc}") from exc
        if question.id in seen:
            raise QuestionFileError(f"{source}:{number}: duplicate id {question.id}")
        seen.add(question.id)
        questions.append(question)
    if not questions:
        raise QuestionFileError(f"{source}: no questions")
    return questions
