"""What one event adds to the rollups: (metric, key, value) increments read from its documented properties."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterator
from typing import Any

from switchboard_shared.contracts.analytics import LATENCY_PARTS, EventType
from switchboard_shared.folding import fold
from switchboard_shared.redaction import redact_text

MAX_KEY_LENGTH = 255
MAX_SOURCES_PER_EVENT = 20
# Latency histogram: bucket i holds (GAMMA**(i-1), GAMMA**i] ms, so a percentile read back from it is
# within (GAMMA - 1) / (GAMMA + 1) ≈ 2.4 % of the true value (the DDSketch construction).
LATENCY_GAMMA = 1.05
_LOG_GAMMA = math.log(LATENCY_GAMMA)
_NON_WORD = re.compile(r"[^\w]+", re.UNICODE)
_PLACEHOLDER = re.compile(r"\[(email|phone|card)\]")


class Metric:
    EVENT = "event"
    PROVIDER = "provider"
    PROVIDER_ERROR = "provider_error"
    FALLBACK = "fallback"
    LATENCY = "latency"
    UNANSWERED = "unanswered"
    CITED = "cited"
    CITED_NEGATIVE = "cited_negative"
    HANDOFF_REASON = "handoff_reason"
    FEEDBACK = "feedback"
    CSAT = "csat"
    TOOL = "tool"
    CONVERSATION = "conversation"  # key: the conversation's outcome signature, bucket: its start
    # Content gaps per knowledge base. GAP key: gap_key(kb, "refused" | "down", question); GAP_SOURCE key:
    # gap_key(kb, document id, question), a document cited in an answer that got a thumbs-down.
    GAP = "gap"
    GAP_SOURCE = "gap_source"


GAP_REFUSED = "refused"
GAP_RATED_DOWN = "down"
_GAP_SEPARATOR = "\t"  # never in a normalised question, a KB id or a document id


def gap_key(kb_id: str, part: str, question: str) -> str:
    return f"{kb_id}{_GAP_SEPARATOR}{part}{_GAP_SEPARATOR}{question}"[:MAX_KEY_LENGTH]


def content_gap(event_type: str, properties: dict[str, Any]) -> str | None:
    """GAP_REFUSED or GAP_RATED_DOWN when the event is a content gap (an answer refused, a thumbs-down)."""
    if event_type == EventType.ANSWER_SENT and properties.get("no_answer") is True:
        return GAP_REFUSED
    if event_type == EventType.FEEDBACK and properties.get("rating") == "down":
        return GAP_RATED_DOWN
    return None


def gap_prefix(kb_id: str) -> str:
    """What every GAP and GAP_SOURCE key of one knowledge base starts with."""
    return f"{kb_id}{_GAP_SEPARATOR}"


def parse_gap_key(key: str) -> tuple[str, str, str] | None:
    """(knowledge base id, part, question) of a GAP or GAP_SOURCE key; None for a malformed one."""
    parts = key.split(_GAP_SEPARATOR, 2)
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 and all(parts) else None


def latency_bucket(ms: float) -> int:
    if ms <= 1.0:
        return 0
    return math.ceil(math.log(ms) / _LOG_GAMMA)


def latency_bucket_value(index: int) -> float:
    """The value a bucket stands for (its relative-error midpoint)."""
    if index <= 0:
        return 1.0
    return 2 * LATENCY_GAMMA**index / (LATENCY_GAMMA + 1)


def normalise_question(text: str) -> str:
    """Lower-case, PII-free, punctuation-free text: questions asked the same way share one key."""
    text = redact_text(unicodedata.normalize("NFKC", text))
    text = fold(_PLACEHOLDER.sub(lambda match: f" {match.group(1)} ", text))
    text = _NON_WORD.sub(" ", text).replace("_", " ")
    return " ".join(text.split())[:MAX_KEY_LENGTH]


def _key(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text[:MAX_KEY_LENGTH] if text else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) and number >= 0 else None


def _sources(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    keys = (_key(item) for item in value[:MAX_SOURCES_PER_EVENT])
    return list(dict.fromkeys(key for key in keys if key))


def is_negative(event_type: str, properties: dict[str, Any]) -> bool:
    if event_type == EventType.FEEDBACK:
        return properties.get("rating") == "down"
    if event_type == EventType.CSAT:
        score = properties.get("score")
        return isinstance(score, int) and not isinstance(score, bool) and score <= 2
    return False


def increments(event_type: str, properties: dict[str, Any]) -> Iterator[tuple[str, str, float]]:
    """The rollup increments of one event: (metric, key, value); each counts once and adds ``value``."""
    yield Metric.EVENT, event_type, 0.0
    if event_type == EventType.ANSWER_SENT:
        provider = _key(properties.get("provider"))
        if provider:
            yield Metric.PROVIDER, provider, 0.0
        latency = properties.get("latency_ms")
        if isinstance(latency, dict):
            for part in LATENCY_PARTS:
                ms = _number(latency.get(part))
                if ms is not None:
                    yield Metric.LATENCY, f"{part}:{latency_bucket(ms)}", ms
        if properties.get("no_answer") is True:
            question = properties.get("question")
            normalised = normalise_question(question) if isinstance(question, str) else ""
            if normalised:
                yield Metric.UNANSWERED, normalised, 0.0
        for source in _sources(properties.get("sources")):
            yield Metric.CITED, source, 0.0
    elif event_type == EventType.PROVIDER_FALLBACK:
        failed = _key(properties.get("from_provider")) or "unknown"
        target = _key(properties.get("to_provider")) or "none"
        yield Metric.PROVIDER_ERROR, failed, 0.0
        yield Metric.FALLBACK, f"{failed}>{target}"[:MAX_KEY_LENGTH], 0.0
    elif event_type == EventType.HANDOFF:
        yield Metric.HANDOFF_REASON, _key(properties.get("reason")) or "unspecified", 0.0
    elif event_type == EventType.FEEDBACK:
        rating = properties.get("rating")
        if rating in ("up", "down"):
            yield Metric.FEEDBACK, rating, 0.0
        if rating == "down":
            for source in _sources(properties.get("sources")):
                yield Metric.CITED_NEGATIVE, source, 0.0
    elif event_type == EventType.CSAT:
        score = properties.get("score")
        if isinstance(score, int) and not isinstance(score, bool) and 1 <= score <= 5:
            yield Metric.CSAT, str(score), float(score)
    elif event_type == EventType.TOOL_CALLED:
        tool = _key(properties.get("tool"))
        if tool:
            yield Metric.TOOL, tool, 0.0
    yield from _gap_increments(event_type, properties)


def _gap_increments(event_type: str, properties: dict[str, Any]) -> Iterator[tuple[str, str, float]]:
    """A content gap (a refused answer, a thumbs-down) counted per knowledge base the answer drew on, and a
    thumbs-down's cited documents with it."""
    gap = content_gap(event_type, properties)
    question = properties.get("question")
    if gap is None or not isinstance(question, str) or not (normalised := normalise_question(question)):
        return
    sources = _sources(properties.get("sources")) if gap == GAP_RATED_DOWN else []
    for kb_id in _sources(properties.get("kb_ids")):
        yield Metric.GAP, gap_key(kb_id, gap, normalised), 0.0
        for source in sources:
            yield Metric.GAP_SOURCE, gap_key(kb_id, source, normalised), 0.0
