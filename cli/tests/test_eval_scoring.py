from pathlib import Path

import pytest

from switchboard_cli.evaluation.questions import Question, QuestionFileError, load_questions
from switchboard_cli.evaluation.scoring import SUMMARY_KEYS, QuestionResult, normalise_source, report


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
