"""Calibration of the curated-answer threshold: precision and recall on a labelled set of paraphrases.

``eval/curated/entries.jsonl`` holds curated questions (English and Russian); ``eval/curated/queries.jsonl``
customer messages, each either a paraphrase of one entry (in its language or the other) or a near miss
(same topic and words, a different question: ``expected`` null). Every query goes through the service's own
matcher (``curated.matching.TenantIndex``) with the entries embedded as the service embeds them; per
threshold:

- a true positive is a paraphrase answered with its entry;
- a false positive is any other answer (a near miss answered, or a paraphrase given the wrong entry);
- precision = TP / (TP + FP), recall = TP / paraphrases.

The chosen threshold is the lowest with precision >= 0.95 (the most recall that keeps precision).

    .venv/bin/python bench/curated_threshold.py [--models use-multilingual,e5-small,minilm]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from switchboard_retrieval.curated.matching import Entry, TenantIndex
from switchboard_retrieval.embeddings.encoders import EmbeddingRegistry
from switchboard_retrieval.settings import RetrievalSettings

ROOT = Path(__file__).resolve().parents[1]
SET = ROOT / "eval" / "curated"
RESULTS = ROOT / "bench" / "results"
TARGET_PRECISION = 0.95


def load(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (SET / name).read_text().splitlines() if line.strip()]


def embed_all(model: str, entries: list[dict[str, Any]], queries: list[dict[str, Any]]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as data:
        settings = RetrievalSettings(data_dir=data, environment="development", embedding_threads=2)
        embedder = EmbeddingRegistry(settings).get(model)
        wordings = {
            e["id"]: np.vstack([embedder.embed_query(t) for t in (e["question"], *e["variants"])]).astype(
                np.float32
            )
            for e in entries
        }
        return {"wordings": wordings, "queries": [embedder.embed_query(q["query"]) for q in queries]}


def grid(
    model: str,
    entries: list[dict[str, Any]],
    queries: list[dict[str, Any]],
    vectors: dict[str, Any],
    *,
    with_variants: bool,
) -> list[dict[str, Any]]:
    index = TenantIndex.build(
        1,
        [
            Entry(
                id=e["id"],
                kb_id=None,
                language=e["language"],
                answer=e["answer"],
                group=None,
                wordings=(e["question"], *e["variants"]) if with_variants else (e["question"],),
                model=model,
                expires_at=None,
                vectors=vectors["wordings"][e["id"]] if with_variants else vectors["wordings"][e["id"]][:1],
            )
            for e in entries
        ],
    )
    now = datetime.now(UTC)
    positives = sum(1 for q in queries if q["expected"])
    rows = []
    for step in range(50, 100):
        threshold = step / 100
        tp = fp = 0
        errors = []
        for query, vector in zip(queries, vectors["queries"], strict=True):
            match = index.match(
                {model: vector},
                thresholds=lambda _, t=threshold: t,
                language=query["language"],
                kb_ids=None,
                now=now,
            )
            if match is None:
                continue
            if match.answer_id == query["expected"]:
                tp += 1
            else:
                fp += 1
                errors.append({"query": query["query"], "got": match.answer_id, "score": match.score})
        rows.append(
            {
                "threshold": threshold,
                "precision": round(tp / (tp + fp), 4) if tp + fp else 1.0,
                "recall": round(tp / positives, 4),
                "tp": tp,
                "fp": fp,
                "false_positives": errors,
            }
        )
    return rows


def evaluate(model: str, entries: list[dict[str, Any]], queries: list[dict[str, Any]]) -> dict[str, Any]:
    vectors = embed_all(model, entries, queries)
    configs = {
        "with_variants": grid(model, entries, queries, vectors, with_variants=True),
        "question_only": grid(model, entries, queries, vectors, with_variants=False),
    }
    # The lowest threshold from which precision stays >= the target in both configurations.
    thresholds = [row["threshold"] for row in configs["with_variants"]]
    chosen = thresholds[-1]
    for i in range(len(thresholds) - 1, -1, -1):
        if all(
            rows[j]["precision"] >= TARGET_PRECISION for rows in configs.values() for j in range(i, len(rows))
        ):
            chosen = thresholds[i]
        else:
            break
    at = {name: next(r for r in rows if r["threshold"] == chosen) for name, rows in configs.items()}
    # The errors are kept only where they inform the choice: just below the chosen threshold.
    for rows in configs.values():
        for row in rows:
            if not chosen - 0.05 <= row["threshold"] <= chosen:
                del row["false_positives"]
    return {"model": model, "chosen": chosen, "at_chosen": at, "grids": configs}


def dump(summary: dict[str, Any]) -> str:
    """Readable and small: one line per grid row."""
    lines = ["{"]
    head = {key: value for key, value in summary.items() if key != "models"}
    for key, value in head.items():
        lines.append(f" {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)},")
    lines.append(' "models": [')
    for i, result in enumerate(summary["models"]):
        lines.append(f'  {{"model": {json.dumps(result["model"])}, "chosen": {result["chosen"]},')
        lines.append(f'   "at_chosen": {json.dumps(result["at_chosen"], ensure_ascii=False)},')
        lines.append('   "grids": {')
        names = list(result["grids"])
        for j, name in enumerate(names):
            rows = ",\n".join(f"    {json.dumps(row, ensure_ascii=False)}" for row in result["grids"][name])
            lines.append(f"   {json.dumps(name)}: [\n{rows}\n   ]{',' if j < len(names) - 1 else ''}")
        lines.append("  }}" + ("," if i < len(summary["models"]) - 1 else ""))
    lines.append(" ]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="use-multilingual,e5-small,minilm")
    args = parser.parse_args()
    entries, queries = load("entries.jsonl"), load("queries.jsonl")
    positives = sum(1 for q in queries if q["expected"])
    summary = {
        "set": {
            "entries": len(entries),
            "queries": len(queries),
            "paraphrases": positives,
            "near_misses": len(queries) - positives,
            "cross_language_paraphrases": sum(
                1
                for q in queries
                if q["expected"]
                and q["language"] != next(e for e in entries if e["id"] == q["expected"])["language"]
            ),
        },
        "target_precision": TARGET_PRECISION,
        "models": [evaluate(model, entries, queries) for model in args.models.split(",")],
    }
    for result in summary["models"]:
        print(f"{result['model']}: chosen threshold {result['chosen']:.2f}")
        for name, rows in result["grids"].items():
            for row in rows:
                if (
                    row["threshold"] in (0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
                    or row["threshold"] == result["chosen"]
                ):
                    print(
                        f"    {name:13} {row['threshold']:.2f}: precision {row['precision']:.3f} "
                        f"recall {row['recall']:.3f} (tp {row['tp']}, fp {row['fp']})"
                    )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{datetime.now(UTC):%Y-%m-%d}-curated-threshold-{'-'.join(args.models.split(','))}.json"
    out.write_text(dump(summary))
    print(f"written {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
