from pathlib import Path

import pytest

from switchboard_shared.evaluation.questions import Question, QuestionFileError, load_questions
from switchboard_shared.evaluation.scoring import SUMMARY_KEYS, QuestionResult, normalise_source, report


def result(
    kind: str,
    expected: list[str],
    ranked: list[str],
    *,
    answer: str = "",
    refused: bool = False,
    phrases: list[str] | None = None,
    latency: float = 100.0,
) -> QuestionResult:
    question = Question(
        id=f"q{len(ranked)}{kind}{answer}",
        question="?",
        kind=kind,  # type: ignore[arg-type]
        expected_sources=expected,
        key_phrases=phrases or [],
    )
    return QuestionResult(question, ranked, answer, refused, latency)


def test_ranks_hits_and_mrr() -> None:
    results = [
        result("single", ["builds.rst"], ["https://x/docs/builds.rst", "faq.rst"]),
        result("single", ["faq.rst"], ["a.rst", "b.rst", "FAQ.rst"]),
        result("detail", ["gone.rst"], ["a.rst"]),
    ]
    summary = report(results)
    overall = summary["overall"]
    assert tuple(overall) == SUMMARY_KEYS
    assert overall["n"] == 3
    assert overall["hit@1"] == pytest.approx(1 / 3, abs=1e-3)
    assert overall["hit@5"] == pytest.approx(2 / 3, abs=1e-3)
    assert overall["mrr@10"] == pytest.approx((1 + 1 / 3) / 3, abs=1e-3)
    assert summary["by_kind"]["detail"]["hit@5"] == 0.0
    assert summary["by_kind"]["single"]["refusal_rate"] is None


def test_key_phrases_refusals_and_latency() -> None:
    results = [
        result(
            "single",
            [],
            [],
            answer="Use a .readthedocs.yaml FILE",
            phrases=[".readthedocs.yaml", "file", "nope"],
        ),
        result("unanswerable", [], [], refused=True, latency=300),
        result("unanswerable", [], [], refused=False, latency=500),
    ]
    overall = report(results)["overall"]
    assert overall["key_phrase_recall"] == pytest.approx(2 / 3, abs=1e-3)
    assert overall["refusal_rate"] == 0.5
    assert overall["latency_p50_ms"] == 300.0
    assert overall["hit@1"] is None


def test_source_names_compare_by_file_name() -> None:
    assert normalise_source("file:///kb/docs__user__builds.rst") == "docs__user__builds.rst"
    assert normalise_source("https://site/a/b.html#x") == "b.html"


def test_question_file_is_validated(tmp_path: Path) -> None:
    good = tmp_path / "q.jsonl"
    good.write_text('{"id": "q1", "question": "How?", "kind": "followup", "history": ["hi"]}\n\n')
    assert load_questions(good)[0].history == ["hi"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "q1", "question": "How?", "kind": "weird"}\n')
    with pytest.raises(QuestionFileError, match="bad.jsonl:1"):
        load_questions(bad)


def test_false_refusals_language_and_context_recall() -> None:
    def asked(
        kind: str, question: str, answer: str, *, refused: bool = False, context: list[str] | None = None
    ):
        item = Question(id=f"{kind}{question}{answer}", question=question, kind=kind, key_phrases=["349"])  # type: ignore[arg-type]
        return QuestionResult(item, [], answer, refused, 10.0, context=context)

    results = [
        asked("single", "Сколько стоит доставка?", "Курьером: 349 ₽ [1]", context=["Курьером: 349 ₽"]),
        # A Russian lead-in before an English quotation speaks Russian.
        asked(
            "single",
            "Сколько стоит доставка?",
            "В справке об этом по-английски: «Courier delivery costs 349 RUB.» [1]",
            context=["Courier delivery costs 349 RUB.", "Returns"],
        ),
        asked("detail", "How much is delivery?", "Не знаю", refused=True, context=["Returns are free."]),
        asked("unanswerable", "Do you sell cars?", "I could not find this.", refused=True, context=["x"]),
    ]
    summary = report(results)
    overall = summary["overall"]
    assert overall["false_refusal_rate"] == pytest.approx(1 / 3, abs=1e-3)
    assert overall["refusal_rate"] == 1.0
    assert overall["answer_language_match"] == 0.75  # the Russian refusal to an English question
    # Only answerable questions count, each by the share of its phrases found in its passages.
    assert overall["context_key_phrase_recall"] == pytest.approx(2 / 3, abs=1e-3)
    assert summary["by_kind"]["detail"]["context_key_phrase_recall"] == 0.0
    assert summary["by_kind"]["unanswerable"]["false_refusal_rate"] is None
    per_question = summary["questions"]
    assert [q["language_match"] for q in per_question] == [True, True, False, True]


def test_context_recall_is_unknown_when_the_passages_are_not_shown() -> None:
    item = Question(id="q", question="How much?", key_phrases=["349"])
    overall = report([QuestionResult(item, [], "349 RUB", False, 1.0)])["overall"]
    assert overall["context_key_phrase_recall"] is None
    assert overall["key_phrase_recall"] == 1.0
