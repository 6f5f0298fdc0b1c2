"""Evaluation: the tenant uploads (or pastes) a question set, runs it against its live assistant through the
gateway, and compares the runs of this session side by side (hit@k, refusals, key phrases), so a change to
a knowledge base can be judged before and after. The question file is the one `switchboard eval` reads."""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any

import pandas as pd
import streamlit as st

from switchboard_console import ui
from switchboard_console.client import GatewayClient, GatewayError
from switchboard_shared.evaluation.questions import Question, QuestionFileError, parse_questions
from switchboard_shared.evaluation.scoring import QuestionResult, report, result_from_turn

RUNS = "evaluation_runs"
COLUMNS = {
    "n": "questions",
    "hit@1": "hit@1",
    "hit@5": "hit@5",
    "mrr@10": "MRR@10",
    "refusal_rate": "unanswerable refused",
    "false_refusal_rate": "answerable refused",
    "key_phrase_recall": "key phrases",
    "answer_language_match": "language match",
}
EXAMPLE = (
    '{"id": "q1", "question": "How long does delivery take?", "expected_sources": ["delivery.md"], '
    '"key_phrases": ["3-5 days"]}\n'
    '{"id": "q2", "question": "Do you ship to the Moon?", "kind": "unanswerable"}'
)


def _document_names(gateway: GatewayClient) -> dict[str, str]:
    """Document id -> name, over the knowledge bases the assistant searches (all of the tenant's if none)."""
    searched = gateway.assistant().get("kb_ids") or [kb["id"] for kb in gateway.kbs()]
    return gateway.document_names(searched)


def _ask(gateway: GatewayClient, question: Question, documents: dict[str, str]) -> QuestionResult:
    started = time.perf_counter()
    try:
        conversation = gateway.open_conversation(f"console-eval-{uuid.uuid4().hex[:12]}")
        for earlier in question.history:
            gateway.turn(conversation["id"], earlier)
        started = time.perf_counter()
        turn = gateway.turn(conversation["id"], question.question)
    except GatewayError as exc:
        return QuestionResult(
            question, [], "", False, (time.perf_counter() - started) * 1000, error=exc.plain()
        )
    return result_from_turn(question, turn, documents, (time.perf_counter() - started) * 1000)


def _run(gateway: GatewayClient, questions: list[Question], label: str) -> dict[str, Any]:
    documents = _document_names(gateway)
    progress = st.progress(0.0, text="Asking…")
    results = []
    for number, question in enumerate(questions, start=1):
        results.append(_ask(gateway, question, documents))
        progress.progress(number / len(questions), text=f"Asked {number} of {len(questions)}")
    progress.empty()
    scored = report(results)
    return {
        "label": label,
        "at": datetime.now().strftime("%H:%M:%S"),
        "overall": scored["overall"],
        "questions": scored["questions"],
    }


def _table(runs: list[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for run in runs:
        row: dict[str, Any] = {"run": f"{run['label']} ({run['at']})"}
        for key, title in COLUMNS.items():
            value = run["overall"].get(key)
            row[title] = None if value is None else (value if key == "n" else round(float(value), 3))
        rows.append(row)
    return pd.DataFrame(rows)


def _details(run: dict[str, Any]) -> None:
    rows = [
        {
            "id": q["id"],
            "kind": q["kind"],
            "question": q["question"],
            "rank of expected source": q["rank"] if q["expected_sources"] else None,
            "refused": q["refused"],
            "key phrases": None if q["key_phrase_recall"] is None else round(q["key_phrase_recall"], 2),
            "answer": (q["error"] or q["answer"])[:300],
        }
        for q in run["questions"]
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def render() -> None:
    st.title("Evaluation")
    st.caption(
        "Ask a question set of your own against the live assistant, before and after changing a knowledge "
        "base, and compare the runs. One JSON object per line: `id`, `question`, optional `history` "
        "(earlier messages), `kind` (`single`, `detail`, `followup` or `unanswerable`), `expected_sources` "
        "(document names) and `key_phrases` (what a good answer contains)."
    )
    gateway = ui.client()
    runs: list[dict[str, Any]] = st.session_state.setdefault(RUNS, [])
    uploaded = st.file_uploader("Question set (JSON lines)", type=["jsonl", "json", "txt"])
    pasted = st.text_area("…or paste it", height=140, placeholder=EXAMPLE)
    label = st.text_input("Name of this run", placeholder="e.g. before the pricing page update", max_chars=60)
    if st.button("Run the evaluation", type="primary"):
        text = uploaded.getvalue().decode("utf-8", errors="replace") if uploaded is not None else pasted
        try:
            questions = parse_questions(text, source=uploaded.name if uploaded is not None else "pasted set")
        except QuestionFileError as exc:
            st.error(f"The question set cannot be read: {exc}")
        else:
            try:
                runs.append(_run(gateway, questions, label.strip() or f"run {len(runs) + 1}"))
            except GatewayError as exc:
                ui.show_error(exc, "Evaluation")
    if not runs:
        st.info("No run yet in this session.")
        return
    st.subheader("Runs")
    st.dataframe(_table(runs), hide_index=True, width="stretch")
    if len(runs) >= 2:
        before, after = runs[-2], runs[-1]
        changes = []
        for key, title in COLUMNS.items():
            old, new = before["overall"].get(key), after["overall"].get(key)
            if key != "n" and old is not None and new is not None and old != new:
                changes.append(f"{title} {old:.3f} → {new:.3f}")
        st.markdown(
            f"**{after['label']}** against **{before['label']}**: "
            + ("; ".join(changes) if changes else "no change")
        )
    st.subheader(f"Questions of {runs[-1]['label']}")
    _details(runs[-1])
