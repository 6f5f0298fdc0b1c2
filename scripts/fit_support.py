"""Fit the extractive answerer's support (``SUPPORT_*`` in ``switchboard_chat.providers.extractive``, with
``CHAT_MIN_SUPPORT_SCORE`` and ``CHAT_CROSS_LANGUAGE_SUPPORT_DISCOUNT``): whether the passages a turn was given
answer its question at all, or the answer is a refusal.

Reads captures of question sets (``switchboard eval … --capture FILE``), reads every captured turn as the
answerer does (``read``, ``rank_question``; meanings compared with the knowledge base's embedding model loaded
here, as ``switchboard eval --replay`` does) and fits a class-balanced logistic regression of "answerable"
over the turn's support as the answerer computes it: the best sentence's linear support (its meaning, its
section heading's meaning, its share of the question's words, whether it holds the kind of fact asked for)
plus coverage (the cosine of the passage retrieval ranked first) and the cross-language discount when the
best-ranked sentence is in another language than the question. The best sentence depends on the weights, so
the fit follows it (a subgradient, Adam steps from the shipped weights). Fit on the main sets only; the
``--check`` sets (the ``*_holdout`` captures) are scored, never fitted.

It prints the weights scaled so that coverage weighs ``SUPPORT_COVERAGE``, the threshold with the least
balanced error on the fitted sets (the mean of the shares of answerable questions refused and unanswerable
ones answered) and, for the shipped support and a range of thresholds around the fitted one, the answerable
questions refused and the unanswerable ones refused on both splits.

    .venv/bin/python scripts/fit_support.py --fit a.capture.json b.capture.json --check c.capture.json

Numpy is enough for six weights and a few hundred questions (no scikit-learn in the install for this).
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from switchboard_chat.providers import extractive
from switchboard_chat.settings import ChatSettings
from switchboard_cli.evaluation.replay import LocalSimilarity, captured_request, load_capture

SENTENCE = ("meaning", "section", "words", "type")
Matrix = npt.NDArray[np.float64]


@dataclass
class Turn:
    sentences: Matrix  # one row per sentence: SENTENCE's signals
    coverage: float
    cross_language: float  # 1 when the best-ranked sentence is in another language than the question
    answerable: bool
    shipped: float  # the shipped support less the shipped threshold (refused below 0)


async def read_turns(path: Path, settings: ChatSettings) -> list[Turn]:
    capture = load_capture(path)
    similarity = LocalSimilarity(capture["embedding_model"], path.with_name(path.name + ".vectors.npz"))
    out: list[Turn] = []
    for turn in capture["turns"]:
        question = turn["question"]
        request = captured_request(turn, similarity, settings)
        reading = await extractive.read(request) if request.passages else None
        if reading is None or reading.meaning is None:
            continue  # nothing to answer from: always a refusal, whatever the weights
        ranked = extractive.rank_question(reading)
        out.append(
            Turn(
                np.array([[c.semantic, c.section, c.lexical, 1.0 if c.carries else 0.0] for c in ranked]),
                reading.coverage,
                1.0 if ranked[0].language != request.language else 0.0,
                question["kind"] != "unanswerable",
                max(c.support for c in ranked) - extractive.threshold(request, ranked),
            )
        )
    similarity.save()
    return out


def load(paths: list[Path], settings: ChatSettings) -> list[Turn]:
    return [turn for path in paths for turn in asyncio.run(read_turns(path, settings))]


def supports(turns: list[Turn], weights: Matrix) -> Matrix:
    """Each turn's support: the best sentence's, plus coverage and the cross-language discount."""
    return np.array(
        [
            float((t.sentences @ weights[:4]).max()) + weights[4] * t.coverage + weights[5] * t.cross_language
            for t in turns
        ]
    )


def fit(
    turns: list[Turn], start: Matrix, *, steps: int = 3000, rate: float = 0.02, l2: float = 0.01
) -> Matrix:
    """Weights (SENTENCE's, coverage, cross-language discount, intercept) of the class-balanced logistic
    regression, each weight kept at or above zero."""
    y = np.array([t.answerable for t in turns], dtype=float)
    balance = np.where(y > 0, 0.5 / y.mean(), 0.5 / (1 - y.mean()))
    params = np.append(start, 0.0)
    first, second = np.zeros_like(params), np.zeros_like(params)
    for step in range(1, steps + 1):
        gradient = np.zeros_like(params)
        for i, t in enumerate(turns):
            best = int(np.argmax(t.sentences @ params[:4]))
            row = np.append(t.sentences[best], [t.coverage, t.cross_language, 1.0])
            error = (1 / (1 + np.exp(-(row @ params))) - y[i]) * balance[i]
            gradient += error * row
        gradient /= len(turns)
        gradient[:-1] += l2 * params[:-1]
        first = 0.9 * first + 0.1 * gradient
        second = 0.999 * second + 0.001 * gradient**2
        params -= rate * (first / (1 - 0.9**step)) / (np.sqrt(second / (1 - 0.999**step)) + 1e-8)
        params[:-1] = np.maximum(params[:-1], 0.0)
    return params


def refusals(scores: Matrix, turns: list[Turn]) -> str:
    answerable = np.array([t.answerable for t in turns], dtype=bool)
    refused = scores < 0
    return (
        f"false refusals {int(refused[answerable].sum())}/{int(answerable.sum())}, "
        f"unanswerable refused {int(refused[~answerable].sum())}/{int((~answerable).sum())}"
    )


def auc(scores: Matrix, turns: list[Turn]) -> float:
    answerable = np.array([t.answerable for t in turns], dtype=bool)
    positive, negative = scores[answerable], scores[~answerable]
    if not len(positive) or not len(negative):
        return float("nan")
    wins = (positive[:, None] > negative[None, :]).sum() + 0.5 * (
        positive[:, None] == negative[None, :]
    ).sum()
    return float(wins / (len(positive) * len(negative)))


def least_balanced_error(scores: Matrix, turns: list[Turn]) -> float:
    answerable = np.array([t.answerable for t in turns], dtype=bool)

    def error(cut: float) -> float:
        return float(((scores[answerable] < cut).mean() + (scores[~answerable] >= cut).mean()) / 2)

    return min(np.sort(scores), key=error)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fit", type=Path, nargs="+", required=True, help="Captures to fit on")
    parser.add_argument("--check", type=Path, nargs="*", default=[], help="Captures only scored")
    args = parser.parse_args()
    settings = ChatSettings()
    fitted, checked = load(args.fit, settings), load(args.check, settings)
    shipped = np.array(
        [
            extractive.SUPPORT_MEANING,
            extractive.SUPPORT_SECTION,
            extractive.SUPPORT_WORDS,
            extractive.SUPPORT_TYPE,
            extractive.SUPPORT_COVERAGE,
            settings.cross_language_support_discount,
        ]
    )
    params = fit(fitted, shipped)
    weights = params[:-1] * extractive.SUPPORT_COVERAGE / params[4]  # coverage weighs as shipped
    fitted_supports = supports(fitted, weights)
    cut = least_balanced_error(fitted_supports, fitted)
    names = (*SENTENCE, "coverage", "cross-language discount")
    print("fitted:", ", ".join(f"{name} {value:.2f}" for name, value in zip(names, weights, strict=True)))
    print(f"threshold with the least balanced error on the fitted sets: {cut:.2f}")
    for name, turns in (("fit", fitted), ("check", checked)):
        ours = supports(turns, weights)
        print(
            f"{name}: {len(turns)} turns; AUC shipped {auc(np.array([t.shipped for t in turns]), turns):.3f}, "
            f"fitted {auc(ours, turns):.3f}"
        )
        print(f"  shipped at its threshold: {refusals(np.array([t.shipped for t in turns]), turns)}")
    print("fitted, by threshold: fit | check")
    for threshold in np.arange(cut - 0.25, cut + 0.26, 0.05):
        print(
            f"  {threshold:.2f}: "
            + " | ".join(refusals(supports(turns, weights) - threshold, turns) for turns in (fitted, checked))
        )


if __name__ == "__main__":
    main()
