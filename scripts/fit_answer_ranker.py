"""Fit the extractive answerer's sentence ranker (``RANK_*`` in ``switchboard_chat.providers.extractive``).

Reads captures of question sets (``switchboard eval … --capture FILE``), reads every answerable captured turn
as the answerer does (``read``, ``rank_question``; meanings compared with the knowledge base's embedding
model loaded here, as ``switchboard eval --replay`` does) and fits a linear ranker over each sentence's
signals as a listwise softmax: the sentences that hold one of the question's key phrases are the ones to put
first. Fit on the main sets only; the ``--check`` sets (the ``*_holdout`` captures) are scored, never fitted.
It prints the weights scaled so that meaning weighs ``RANK_SEMANTIC``, and for each set how often a sentence
holding the key phrase is ranked first and in the top 3, by the shipped ranker and by the fitted one.

    .venv/bin/python scripts/fit_answer_ranker.py --fit a.capture.json b.capture.json --check c.capture.json

Numpy's gradient descent is enough for a dozen weights and a few hundred questions (no scikit-learn in the
install for this).
"""

from __future__ import annotations

import argparse
import asyncio
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from switchboard_chat.providers import extractive
from switchboard_chat.settings import ChatSettings
from switchboard_cli.evaluation.replay import LocalSimilarity, captured_request, load_capture

FEATURES = ("semantic", "rarity", "type", "passage_cosine", "passage_score", "length", "introduces")
# The section heading's similarity is not fitted: it adds this fixed amount (in the fit's own units) times the
# similarity (see ``RANK_SECTION``).
SECTION_PRIOR = 1.0
# Cognates across languages are not fitted either: they weigh as shipped (``RANK_COGNATE``), in the same units.
COGNATE_PRIOR = extractive.RANK_COGNATE * SECTION_PRIOR / extractive.RANK_SECTION
Matrix = npt.NDArray[np.float64]


@dataclass
class Turn:
    features: Matrix  # one row per sentence
    fixed: Matrix  # each sentence's unfitted score: its section heading's similarity and its cognates
    holds: Matrix  # 1 where the sentence holds a key phrase
    shipped: Matrix  # the shipped ranker's score


async def turns(path: Path) -> list[Turn]:
    settings = ChatSettings()
    capture = load_capture(path)
    similarity = LocalSimilarity(capture["embedding_model"], path.with_name(path.name + ".vectors.npz"))
    out: list[Turn] = []
    for turn in capture["turns"]:
        question = turn["question"]
        if question["kind"] == "unanswerable" or not turn["hits"]:
            continue
        request = captured_request(turn, similarity, settings)
        hits = [p.hit for p in request.passages]
        reading = await extractive.read(request)
        if reading is None or reading.meaning is None:
            continue
        ranked = extractive.rank_question(reading)
        top = max(hit.score for hit in hits) or 1.0
        phrases = [phrase.lower() for phrase in question["key_phrases"]]
        at = {(unit.passage, unit.position): i for i, unit in enumerate(reading.units)}
        rows, fixed, holds, shipped = [], [], [], []
        for c in ranked:
            hit = hits[c.passage - 1]
            rows.append(
                [
                    c.semantic,
                    c.rarity,
                    1.0 if c.carries else (-1.0 if not c.fits else 0.0),
                    hit.vector_score or 0.0,
                    hit.score / top,
                    math.log(len(c.sentence)) / 6,
                    1.0 if c.sentence.rstrip().endswith(":") else 0.0,
                ]
            )
            cognate = reading.cognates[at[(c.passage, c.position)]] if reading.cognates else 0.0
            fixed.append(SECTION_PRIOR * c.section + COGNATE_PRIOR * cognate)
            holds.append(1.0 if any(phrase in c.sentence.lower() for phrase in phrases) else 0.0)
            shipped.append(c.score)
        out.append(Turn(np.array(rows), np.array(fixed), np.array(holds), np.array(shipped)))
    similarity.save()
    return out


def fit(data: list[Turn], *, l2: float = 1e-3, steps: int = 1500, rate: float = 0.5) -> Matrix:
    """Weights that maximise the softmax probability of the sentences holding the key phrase."""
    usable = [t for t in data if t.holds.sum() > 0]
    weights = np.zeros(len(FEATURES))
    for _ in range(steps):
        gradient = np.zeros(len(FEATURES))
        for t in usable:
            scores = t.features @ weights + t.fixed
            p = np.exp(scores - scores.max())
            p /= p.sum()
            target = p * t.holds / (p * t.holds).sum()
            gradient += t.features.T @ (p - target)
        weights -= rate * (gradient / len(usable) + l2 * weights)
    return weights


def at_top(scores: Matrix, holds: Matrix, k: int) -> float:
    return float(holds[np.argsort(-scores, kind="stable")[:k]].max() > 0)


def report(name: str, data: list[Turn], weights: Matrix) -> None:
    usable = [t for t in data if t.holds.sum() > 0]
    if not usable:
        return
    row = [
        np.mean([at_top(score(t), t.holds, k) for t in usable])
        for score in (lambda t: t.shipped, lambda t: t.features @ weights + t.fixed)
        for k in (1, 3)
    ]
    print(
        f"{name:28} n={len(usable):3}  shipped top1 {row[0]:.3f} top3 {row[1]:.3f}  fitted top1 {row[2]:.3f} top3 {row[3]:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fit", type=Path, nargs="+", required=True, help="Captures to fit on")
    parser.add_argument("--check", type=Path, nargs="*", default=[], help="Captures only scored")
    args = parser.parse_args()
    fitted = {path: asyncio.run(turns(path)) for path in args.fit}
    checked = {path: asyncio.run(turns(path)) for path in args.check}
    weights = fit([t for data in fitted.values() for t in data])
    scale = extractive.RANK_SEMANTIC / weights[0]
    print(
        "weights:",
        ", ".join(f"{name} {value * scale:.2f}" for name, value in zip(FEATURES, weights, strict=True)),
        f"(fixed: section {SECTION_PRIOR * scale:.2f}, cognate {COGNATE_PRIOR * scale:.2f})",
    )
    for group, sets in (("fit", fitted), ("check", checked)):
        for path, data in sets.items():
            report(f"{group} {path.name.split('.')[0]}", data, weights)
        report(f"{group} (pooled)", [t for data in sets.values() for t in data], weights)


if __name__ == "__main__":
    main()
