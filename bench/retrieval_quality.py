"""Retrieval quality of each embedding model: hit@1, hit@5 and MRR@10 for vector-only, BM25-only and hybrid
search, on question sets in the `switchboard eval` format.

It runs the retrieval service in-process (its real API, ingestion and search code) on a throwaway data
directory, ingests each corpus once per model through a files source, and asks every question in every mode.
A hit is a retrieved passage whose source file name is in ``expected_sources``; unanswerable questions have
none and are left out of these metrics. A follow-up is searched as its last history message plus the question.

    .venv/bin/python bench/retrieval_quality.py                    # RTD (en + ru questions) and the demo KB
    .venv/bin/python bench/retrieval_quality.py --models minilm --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
RTD = ROOT.parent / "shared" / "kb" / "readthedocs"
SUITES = [
    ("rtd-en", RTD, ROOT / "eval" / "readthedocs.jsonl"),
    ("rtd-ru", RTD, ROOT / "eval" / "readthedocs_ru.jsonl"),
    ("demo", ROOT / "demo" / "kb", ROOT / "eval" / "demo.jsonl"),
]
MODES = ("vector", "bm25", "hybrid")
HEADERS = {"X-Internal-Token": "bench", "X-Tenant-ID": "bench"}


def load_questions(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def query_of(question: dict[str, Any]) -> str:
    history = question.get("history") or []
    return f"{history[-1]} {question['question']}" if history else str(question["question"])


def score(ranked_files: list[str], expected: set[str]) -> tuple[float, float, float]:
    rank = next((i for i, name in enumerate(ranked_files[:10], start=1) if name in expected), None)
    return (
        1.0 if rank == 1 else 0.0,
        1.0 if rank is not None and rank <= 5 else 0.0,
        1.0 / rank if rank is not None else 0.0,
    )


async def wait_job(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    while True:
        job: dict[str, Any] = (await client.get(f"/internal/v1/jobs/{job_id}")).json()
        if job["status"] in ("succeeded", "failed"):
            return job
        await asyncio.sleep(0.2)


async def run(models: list[str], suites: list[tuple[str, Path, Path]]) -> dict[str, Any]:
    from switchboard_retrieval.main import create_app
    from switchboard_retrieval.settings import RetrievalSettings
    from switchboard_shared.logging import configure_logging

    configure_logging(service="bench", level="WARNING", json=False)

    data = Path(tempfile.mkdtemp(prefix="sb-quality-"))
    settings = RetrievalSettings(
        data_dir=str(data),
        internal_token="bench",
        environment="test",
        log_json=False,
        log_level="WARNING",
        scheduler_interval_seconds=0,
    )
    app = create_app(settings)
    results: dict[str, Any] = {"models": {}, "questions": {}}
    async with app.router.lifespan_context(app) as state:

        async def asgi(scope: Any, receive: Any, send: Any) -> None:
            scope["state"] = dict(state)
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", headers=HEADERS, timeout=600
        ) as client:
            corpora: dict[tuple[str, Path], str] = {}
            for model in models:
                results["models"][model] = {}
                for suite, corpus, questions_path in suites:
                    if not corpus.is_dir():
                        print(f"skip {suite}: {corpus} is absent", file=sys.stderr)
                        continue
                    kb_id = corpora.get((model, corpus))
                    if kb_id is None:
                        kb = (
                            await client.post(
                                "/internal/v1/kbs",
                                json={"name": f"{model}-{corpus.name}", "embedding_model": model},
                            )
                        ).json()
                        started = time.perf_counter()
                        created = (
                            await client.post(
                                f"/internal/v1/kbs/{kb['id']}/sources",
                                json={"type": "files", "config": {"path": str(corpus)}},
                            )
                        ).json()
                        job = await wait_job(client, created["job"]["id"])
                        print(
                            f"{model}: ingested {corpus.name}: {job['counts']['added']} chunks in {time.perf_counter() - started:.1f}s",
                            file=sys.stderr,
                        )
                        kb_id = corpora[(model, corpus)] = kb["id"]
                    questions = [q for q in load_questions(questions_path) if q["expected_sources"]]
                    table: dict[str, dict[str, float]] = {}
                    for mode in MODES:
                        sums = [0.0, 0.0, 0.0]
                        latencies = []
                        for q in questions:
                            t0 = time.perf_counter()
                            response = await client.post(
                                f"/internal/v1/kbs/{kb_id}/search",
                                json={"query": query_of(q), "top_k": 10, "mode": mode},
                            )
                            latencies.append((time.perf_counter() - t0) * 1000)
                            hits = response.json()["hits"]
                            files = [Path(h["url"] or "").name for h in hits]
                            s = score(files, set(q["expected_sources"]))
                            sums = [a + b for a, b in zip(sums, s, strict=True)]
                            results["questions"].setdefault(f"{model}/{suite}/{mode}", []).append(
                                {"id": q["id"], "hit@1": s[0], "hit@5": s[1], "rr": s[2], "top": files[:5]}
                            )
                        n = len(questions)
                        latencies.sort()
                        table[mode] = {
                            "n": n,
                            "hit@1": round(sums[0] / n, 3),
                            "hit@5": round(sums[1] / n, 3),
                            "mrr@10": round(sums[2] / n, 3),
                            "latency_p50_ms": round(latencies[n // 2], 1),
                        }
                    results["models"][model][suite] = table
    return results


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "| model | question set | n | mode | hit@1 | hit@5 | MRR@10 | p50 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for model, suites in results["models"].items():
        for suite, table in suites.items():
            for mode, row in table.items():
                lines.append(
                    f"| {model} | {suite} | {row['n']} | {mode} | {row['hit@1']:.3f} | {row['hit@5']:.3f} | {row['mrr@10']:.3f} | {row['latency_p50_ms']} |"
                )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="minilm,use-multilingual,e5-small")
    parser.add_argument("--suites", default=",".join(name for name, _, _ in SUITES))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    wanted = set(args.suites.split(","))
    results = asyncio.run(run(args.models.split(","), [s for s in SUITES if s[0] in wanted]))
    print(markdown(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
