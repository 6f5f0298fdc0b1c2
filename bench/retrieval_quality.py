"""Retrieval quality of each embedding model and search mode: hit@1, hit@5, MRR@10 and the context recall of
key phrases in the top ``--context-k`` passages (what chat hands its answerer), on question sets in the
`switchboard eval` format, overall, by question kind and by phrasing style.

It runs the retrieval service in-process (its real API, ingestion and search code) on a throwaway data
directory, ingests each corpus once per model through a files source, and asks every question in every mode.
A hit is a retrieved passage whose source file name is in ``expected_sources``; unanswerable questions have
none and are left out of these metrics. A follow-up is searched with the query chat builds from the
conversation (``switchboard_chat.turn.query.search_query``: the previous user turns folded in).

    .venv/bin/python bench/retrieval_quality.py                    # every set below, default model
    .venv/bin/python bench/retrieval_quality.py --models use-multilingual,e5-small --suites rtd-en-hard
    .venv/bin/python bench/retrieval_quality.py --modes vector,hybrid --json out.json
    .venv/bin/python bench/retrieval_quality.py --variant no-spelling:spelling_correction=false

A ``--variant NAME:setting=value,...`` asks every question again with those retrieval settings changed on
the running service (search-time settings only: the corpus is ingested once).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
# The Read the Docs corpus lives beside the checkout (one level further up from a git worktree).
RTD = next(
    (
        p / "shared" / "kb" / "readthedocs"
        for p in ROOT.parents
        if (p / "shared" / "kb" / "readthedocs").is_dir()
    ),
    ROOT.parent / "shared" / "kb" / "readthedocs",
)
DEMO = ROOT / "demo" / "kb"
EVAL = ROOT / "eval"
SUITES = [
    ("rtd-en", RTD, EVAL / "readthedocs.jsonl"),
    ("rtd-ru", RTD, EVAL / "readthedocs_ru.jsonl"),
    ("demo", DEMO, EVAL / "demo.jsonl"),
    ("rtd-en-hard", RTD, EVAL / "rtd_hard.jsonl"),
    ("rtd-ru-hard", RTD, EVAL / "rtd_hard_ru.jsonl"),
    ("demo-ru-hard", DEMO, EVAL / "demo_ru_hard.jsonl"),
    ("rtd-en-holdout", RTD, EVAL / "rtd_hard_holdout.jsonl"),
    ("rtd-ru-holdout", RTD, EVAL / "rtd_hard_ru_holdout.jsonl"),
    ("demo-ru-holdout", DEMO, EVAL / "demo_ru_hard_holdout.jsonl"),
    ("demo-two-part", DEMO, EVAL / "demo_two_part.jsonl"),
    ("demo-en-holdout", DEMO, EVAL / "demo_en_hard_holdout.jsonl"),
]
MODES = ("vector", "bm25", "hybrid")
HEADERS = {"X-Internal-Token": "bench", "X-Tenant-ID": "bench"}
# Citations link only to public addresses: the tests find documents by the path mapped onto this one.
PUBLIC = "https://help.example/"


def load_questions(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def chat_query_builder() -> Callable[[dict[str, Any]], str]:
    """The query chat sends to retrieval for a question and its earlier user turns."""
    from switchboard_chat.conversations.window import WindowMessage
    from switchboard_chat.turn.query import search_query

    def build(question: dict[str, Any]) -> str:
        history = [
            WindowMessage(id=str(i), seq=i, role="user", text=text)
            for i, text in enumerate(question.get("history") or [])
        ]
        return search_query(str(question["question"]), history)

    return build


def rank_of(ranked_files: list[str], expected: set[str]) -> int | None:
    return next((i for i, name in enumerate(ranked_files[:10], start=1) if name in expected), None)


def phrase_recall(texts: Iterable[str], phrases: list[str]) -> float | None:
    if not phrases:
        return None
    context = " ".join(texts).casefold()
    return sum(1 for phrase in phrases if phrase.casefold() in context) / len(phrases)


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(rows)
    recalls = [r["context_recall"] for r in rows if r["context_recall"] is not None]
    latencies = sorted(r["ms"] for r in rows)
    return {
        "n": n,
        "hit@1": round(sum(1 for r in rows if r["rank"] == 1) / n, 3),
        "hit@5": round(sum(1 for r in rows if r["rank"] is not None and r["rank"] <= 5) / n, 3),
        "mrr@10": round(sum(1.0 / r["rank"] for r in rows if r["rank"] is not None) / n, 3),
        "context_recall": round(sum(recalls) / len(recalls), 3) if recalls else None,
        "latency_p50_ms": round(latencies[n // 2], 1),
    }


def grouped(rows: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(str(row[key]), []).append(row)
    return {name: summary(group) for name, group in sorted(groups.items())}


async def wait_job(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    while True:
        job: dict[str, Any] = (await client.get(f"/internal/v1/jobs/{job_id}")).json()
        if job["status"] in ("succeeded", "failed"):
            return job
        await asyncio.sleep(0.2)


def parse_variant(spec: str) -> tuple[str, dict[str, str]]:
    name, _, assignments = spec.partition(":")
    overrides = dict(item.split("=", 1) for item in assignments.split(",") if item)
    return name, overrides


async def run(
    models: list[str],
    suites: list[tuple[str, Path, Path]],
    modes: list[str],
    context_k: int,
    variants: list[tuple[str, dict[str, str]]],
) -> dict[str, Any]:
    from switchboard_retrieval.main import create_app
    from switchboard_retrieval.settings import RetrievalSettings
    from switchboard_shared.logging import configure_logging

    configure_logging(service="bench", level="WARNING", json=False)
    build_query = chat_query_builder()

    data = Path(tempfile.mkdtemp(prefix="sb-quality-"))
    settings = RetrievalSettings(
        data_dir=str(data),
        internal_token="bench",
        environment="test",
        log_json=False,
        log_level="WARNING",
        scheduler_interval_seconds=0,
        files_roots=[str(corpus) for _, corpus, _ in suites],
    )
    app = create_app(settings)
    results: dict[str, Any] = {"context_k": context_k, "models": {}, "ingestion": {}, "questions": {}}
    async with app.router.lifespan_context(app) as state:
        runtime_settings = state["runtime"].settings
        defaults = runtime_settings.model_dump()

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
                    if not corpus.is_dir() or not questions_path.is_file():
                        print(f"skip {suite}: {corpus} or {questions_path} is absent", file=sys.stderr)
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
                                json={
                                    "type": "files",
                                    "config": {"path": str(corpus), "public_base_url": PUBLIC},
                                },
                            )
                        ).json()
                        job = await wait_job(client, created["job"]["id"])
                        seconds = time.perf_counter() - started
                        results["ingestion"][f"{model}/{corpus.name}"] = {
                            "chunks": job["counts"]["added"],
                            "seconds": round(seconds, 1),
                        }
                        print(
                            f"{model}: ingested {corpus.name}: {job['counts']['added']} chunks in {seconds:.1f}s",
                            file=sys.stderr,
                        )
                        kb_id = corpora[(model, corpus)] = kb["id"]
                    questions = [q for q in load_questions(questions_path) if q["expected_sources"]]
                    table: dict[str, Any] = {}
                    for variant, overrides in variants:
                        for key, value in {**defaults, **overrides}.items():
                            field = type(runtime_settings).model_fields[key]
                            setattr(runtime_settings, key, _coerce(value, field.annotation))
                        for mode in modes:
                            label = mode if variant == "default" else f"{variant}/{mode}"
                            rows = await ask_all(client, kb_id, questions, mode, build_query, context_k)
                            results["questions"][f"{model}/{suite}/{label}"] = rows
                            table[label] = {
                                **summary(rows),
                                "by_kind": grouped(rows, "kind"),
                                "by_style": grouped(rows, "style"),
                            }
                    results["models"][model][suite] = table
    return results


async def ask_all(
    client: httpx.AsyncClient,
    kb_id: str,
    questions: list[dict[str, Any]],
    mode: str,
    build_query: Callable[[dict[str, Any]], str],
    context_k: int,
) -> list[dict[str, Any]]:
    rows = []
    for q in questions:
        body: dict[str, Any] = {"query": build_query(q), "top_k": 10, "mode": mode}
        t0 = time.perf_counter()
        response = await client.post(f"/internal/v1/kbs/{kb_id}/search", json=body)
        ms = (time.perf_counter() - t0) * 1000
        response.raise_for_status()
        hits = response.json()["hits"]
        files = [Path(h["url"] or "").name for h in hits]
        rows.append(
            {
                "id": q["id"],
                "kind": q.get("kind", "single"),
                "style": q.get("style", "-"),
                "rank": rank_of(files, set(q["expected_sources"])),
                "context_recall": phrase_recall((h["text"] for h in hits[:context_k]), q["key_phrases"]),
                "ms": ms,
                "top": files[:5],
            }
        )
    return rows


def _coerce(value: Any, annotation: Any) -> Any:
    """A setting's value from the command line (a string) as the setting's type."""
    if not isinstance(value, str) or annotation is str:
        return value
    if annotation is bool:
        return value.lower() in ("1", "true", "yes", "on")
    if annotation in (int, float):
        return annotation(value)
    return value


def _cell(value: Any) -> str:
    return "–" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def markdown(results: dict[str, Any]) -> str:
    k = results["context_k"]
    lines = [
        f"| model | question set | n | mode | hit@1 | hit@5 | MRR@10 | context recall@{k} | follow-up hit@1 | p50 ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for model, suites in results["models"].items():
        for suite, table in suites.items():
            for mode, row in table.items():
                followup = row["by_kind"].get("followup", {}).get("hit@1")
                cells = [row[key] for key in ("hit@1", "hit@5", "mrr@10", "context_recall")]
                lines.append(
                    f"| {model} | {suite} | {row['n']} | {mode} | "
                    + " | ".join(_cell(c) for c in cells)
                    + f" | {_cell(followup)} | {row['latency_p50_ms']} |"
                )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="use-multilingual")
    parser.add_argument("--suites", default=",".join(name for name, _, _ in SUITES))
    parser.add_argument("--modes", default="vector,bm25,hybrid")
    parser.add_argument("--context-k", type=int, default=5, help="passages chat hands its answerer")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="NAME:setting=value,... search-time retrieval settings to compare (repeatable)",
    )
    args = parser.parse_args()
    wanted = set(args.suites.split(","))
    modes = args.modes.split(",")
    unknown = set(modes) - set(MODES)
    if unknown:
        parser.error(f"unknown modes {sorted(unknown)}; choose from {MODES}")
    results = asyncio.run(
        run(
            args.models.split(","),
            [s for s in SUITES if s[0] in wanted],
            modes,
            args.context_k,
            [("default", {}), *(parse_variant(spec) for spec in args.variant)],
        )
    )
    print(markdown(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
