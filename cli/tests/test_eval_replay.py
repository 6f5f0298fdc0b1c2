"""``switchboard eval --capture`` / ``--replay``: a capture round-trips and is answered again offline by the
extractive answerer, scored as the live evaluation scores it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from switchboard_chat.settings import ChatSettings
from switchboard_cli.evaluation.replay import (
    ReplayError,
    captured_request,
    captured_turn,
    chat_view,
    load_capture,
    replay_turns,
    write_capture,
)
from switchboard_shared.evaluation.questions import Question
from switchboard_shared.evaluation.scoring import QuestionResult, report


def hit(index: int, text: str, document: str) -> dict[str, object]:
    return {
        "chunk_id": f"c{index}",
        "document_id": document,
        "kb_id": "kb",
        "source_id": "s",
        "title": "Delivery",
        "heading_path": ["Delivery costs"],
        "text": text,
        "snippet": text[:50],
        "score": 0.5,
        "language": "en",
    }


def capture_file(tmp_path: Path) -> Path:
    answerable = Question(
        id="q1",
        question="How much does courier delivery cost?",
        expected_sources=["delivery.md"],
        key_phrases=["349"],
    )
    unanswerable = Question(id="q2", question="Do you sell cars?", kind="unanswerable")
    fleet = QuestionResult(answerable, [], "", False, 10.0)
    turns = [
        captured_turn(
            answerable,
            language="en",
            query=answerable.question,
            hits=[hit(1, "Courier delivery costs 349 RUB. Couriers call before they come.", "d1")],
            corrected_query=None,
            query_words={"chunks": 40, "frequencies": {"courier": 3, "delivery": 12, "cost": 5}},
            fleet=fleet,
        ),
        captured_turn(
            unanswerable,
            language="en",
            query=unanswerable.question,
            hits=[],
            corrected_query=None,
            query_words=None,
            fleet=fleet,
        ),
    ]
    path = tmp_path / "set.cap.json"
    write_capture(
        path,
        corpus="kb",
        questions="set.jsonl",
        kb_id="kb",
        embedding_model="use-multilingual",
        documents={"d1": "delivery.md"},
        turns=turns,
    )
    return path


def test_a_capture_is_answered_again_and_scored(tmp_path: Path) -> None:
    capture = load_capture(capture_file(tmp_path))
    results = asyncio.run(replay_turns(capture, None))  # no embedding space: shared words decide
    summary = report(results)["overall"]
    assert "349" in results[0].answer and results[0].ranked_sources[0] == "delivery.md"
    assert results[1].refused and not results[0].refused
    assert summary["key_phrase_recall"] == 1.0 and summary["refusal_rate"] == 1.0
    assert summary["context_key_phrase_recall"] == 1.0
    # What retrieval said of the query's words reaches the answerer as it did in the fleet.
    words = captured_request(capture["turns"][0], None, ChatSettings()).query_words
    assert words is not None and words.chunks == 40 and words.frequencies["delivery"] == 12


def test_chat_view_is_the_language_and_query_chat_uses() -> None:
    question = Question(id="f", question="а в Казахстан?", history=["Сколько стоит доставка в Беларусь?"])
    language, query = chat_view(question, ["en", "ru"])
    assert language == "ru" and "доставка" in query


def test_a_file_that_is_not_a_capture_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"version": 99}')
    with pytest.raises(ReplayError):
        load_capture(path)
