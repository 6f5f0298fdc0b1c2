"""Scores of one evaluation run: per question, then summaries overall and by kind, with fixed keys."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from switchboard_shared.evaluation.questions import Question
from switchboard_shared.language import answer_language, detect_language

SUMMARY_KEYS = (
    "n",
    "hit@1",
    "hit@5",
    "mrr@10",
    "key_phrase_recall",
    "refusal_rate",
    "false_refusal_rate",
    "answer_language_match",
    "context_key_phrase_recall",
    "latency_p50_ms",
    "latency_p95_ms",
)


@dataclass
class QuestionResult:
    question: Question
    ranked_sources: list[str]
    answer: str
    refused: bool
    latency_ms: float
    provider: str | None = None
    error: str | None = None
    citations: list[dict[str, Any]] = field(default_factory=list)
    context: list[str] | None = None  # the passages' texts the answerer was given (None: not shown)
    support: float | None = None

    @property
    def answerable(self) -> bool:
        return self.question.kind != "unanswerable"

    def rank(self) -> int | None:
        """1-based rank of the first expected source, or None."""
        expected = {normalise_source(name) for name in self.question.expected_sources}
        for position, source in enumerate(self.ranked_sources, start=1):
            if normalise_source(source) in expected:
                return position
        return None

    def key_phrase_recall(self) -> float | None:
        return _phrase_share(self.question.key_phrases, self.answer)

    def context_key_phrase_recall(self) -> float | None:
        """The share of the key phrases present in the passages given to the answerer: the ceiling of
        any answerer's key-phrase recall (None without key phrases, or when the passages were not shown)."""
        if self.context is None or not self.answerable:
            return None
        return _phrase_share(self.question.key_phrases, "\n".join(self.context))

    def language_match(self) -> bool | None:
        """The answer speaks the question's language (quotations of the sources aside)."""
        if self.error is not None or not self.answer.strip():
            return None
        return answer_language(self.answer) == detect_language(self.question.question)

    def as_json(self) -> dict[str, Any]:
        rank = self.rank()
        scored = bool(self.question.expected_sources)
        return {
            "id": self.question.id,
            "kind": self.question.kind,
            "question": self.question.question,
            "answer": self.answer,
            "provider": self.provider,
            "ranked_sources": self.ranked_sources,
            "expected_sources": self.question.expected_sources,
            "rank": rank,
            "hit@1": (rank == 1) if scored else None,
            "hit@5": (rank is not None and rank <= 5) if scored else None,
            "key_phrase_recall": self.key_phrase_recall(),
            "context_key_phrase_recall": self.context_key_phrase_recall(),
            "refused": self.refused,
            "language_match": self.language_match(),
            "support": self.support,
            "latency_ms": round(self.latency_ms, 1),
            "error": self.error,
        }


def _phrase_share(phrases: Sequence[str], text: str) -> float | None:
    if not phrases:
        return None
    folded = text.casefold()
    return sum(1 for phrase in phrases if phrase.casefold() in folded) / len(phrases)


def normalise_source(value: str) -> str:
    """A source named by path, URL or file name compares by its file name."""
    name = value.split("?", 1)[0].split("#", 1)[0].rstrip("/")
    return PurePosixPath(name).name.casefold()


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    lower = int(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def summarise(results: Sequence[QuestionResult]) -> dict[str, Any]:
    retrieval = [r for r in results if r.question.expected_sources and r.question.kind != "unanswerable"]
    ranks = [r.rank() for r in retrieval]
    recalls = [value for r in results if (value := r.key_phrase_recall()) is not None]
    unanswerable = [r for r in results if not r.answerable]
    answerable = [r for r in results if r.answerable and r.error is None]
    context_recalls = [value for r in results if (value := r.context_key_phrase_recall()) is not None]
    languages = [value for r in results if (value := r.language_match()) is not None]
    latencies = [r.latency_ms for r in results if r.error is None]

    def mean(values: Sequence[float]) -> float | None:
        return round(sum(values) / len(values), 4) if values else None

    p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
    return {
        "n": len(results),
        "hit@1": mean([1.0 if rank == 1 else 0.0 for rank in ranks]),
        "hit@5": mean([1.0 if rank is not None and rank <= 5 else 0.0 for rank in ranks]),
        "mrr@10": mean([1.0 / rank if rank is not None and rank <= 10 else 0.0 for rank in ranks]),
        "key_phrase_recall": mean(recalls),
        "refusal_rate": mean([1.0 if r.refused else 0.0 for r in unanswerable]),
        "false_refusal_rate": mean([1.0 if r.refused else 0.0 for r in answerable]),
        "answer_language_match": mean([1.0 if match else 0.0 for match in languages]),
        "context_key_phrase_recall": mean(context_recalls),
        "latency_p50_ms": round(p50, 1) if p50 is not None else None,
        "latency_p95_ms": round(p95, 1) if p95 is not None else None,
    }


def report(results: Sequence[QuestionResult]) -> dict[str, Any]:
    kinds = sorted({r.question.kind for r in results})
    return {
        "overall": summarise(results),
        "by_kind": {kind: summarise([r for r in results if r.question.kind == kind]) for kind in kinds},
        "questions": [r.as_json() for r in results],
    }


def result_from_turn(
    question: Question, turn: dict[str, Any], documents: dict[str, str], latency_ms: float
) -> QuestionResult:
    """The scored result of one turn of the public API (its JSON). ``documents``: document id -> the name
    the question set's ``expected_sources`` use. What retrieval found ranks as the answer's citations first,
    then the passages retrieval returned in its order; the passages the answerer was given are shown to
    server and admin keys."""
    context = [str(p.get("text", "")) for p in turn.get("context") or []]
    reply = turn.get("reply") or {}
    citations = reply.get("citations", [])
    ranked: list[str] = []
    for citation in citations:
        name = (
            documents.get(citation.get("document_id", "")) or citation.get("url") or citation.get("title", "")
        )
        ranked.append(name)
    for document_id in [*turn.get("sources", []), *turn.get("retrieved", [])]:
        name = documents.get(document_id, document_id)
        if name not in ranked:
            ranked.append(name)
    refused = bool(reply.get("no_answer")) or turn.get("handoff") is not None
    return QuestionResult(
        question,
        ranked,
        reply.get("text", ""),
        refused,
        latency_ms,
        provider=reply.get("provider"),
        citations=citations,
        context=context if turn.get("context") is not None else None,
        support=turn.get("support"),
    )
