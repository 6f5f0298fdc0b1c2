"""Ingestion rate against the raw batch-embedding rate of the same model, measured in the same run.

Raw: the corpus is parsed and chunked once, then the chunk texts are embedded with ``embed_documents``.
Ingest: the same corpus is synced into a fresh knowledge base through the service's API (fetch, parse,
chunk, embed in batches, Chroma upsert, SQL rows, BM25 rebuild); its rate is chunks embedded / job time.
Rounds alternate raw and ingest so machine drift evens out; medians are reported with their ratio.

    .venv/bin/python bench/retrieval_ingest.py [--model minilm] [--rounds 3] [--corpus DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
RTD = ROOT.parent / "shared" / "kb" / "readthedocs"
HEADERS = {"X-Internal-Token": "bench", "X-Tenant-ID": "bench"}


def chunk_texts(corpus: Path, settings: Any) -> list[str]:
    from switchboard_retrieval.ingestion.chunking import Chunker
    from switchboard_retrieval.ingestion.parsing import FetchedDocument, format_for, parse_document

    chunker = Chunker(chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap)
    texts = []
    for path in sorted(corpus.rglob("*")):
        fmt = format_for(path.name)
        if not path.is_file() or fmt is None:
            continue
        doc = FetchedDocument(str(path), path.name, path.read_bytes(), fmt)
        texts += [
            c.indexed_text()
            for c in chunker.chunk(parse_document(doc), source_id="s", document_uri=doc.uri, url=None)
        ]
    return texts


async def main_async(model: str, rounds: int, corpus: Path) -> dict[str, Any]:
    from switchboard_retrieval.main import create_app
    from switchboard_retrieval.settings import RetrievalSettings
    from switchboard_shared.logging import configure_logging

    configure_logging(service="bench", level="WARNING", json=False)
    data = Path(tempfile.mkdtemp(prefix="sb-ingest-bench-"))
    settings = RetrievalSettings(
        data_dir=str(data),
        internal_token="bench",
        environment="test",
        scheduler_interval_seconds=0,
        default_embedding_model=model,
        job_concurrency=1,
        files_roots=[str(corpus)],
    )
    texts = chunk_texts(corpus, settings)
    app = create_app(settings)
    raw_rates: list[float] = []
    ingest_rates: list[float] = []
    async with app.router.lifespan_context(app) as state:

        async def asgi(scope: Any, receive: Any, send: Any) -> None:
            scope["state"] = dict(state)
            await app(scope, receive, send)

        embedder = state["runtime"].embeddings.get(model)
        embedder.embed_documents(texts[:16])  # warm-up: load weights, first-call allocations
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=asgi), base_url="http://b", headers=HEADERS, timeout=3600
        ) as client:
            for i in range(rounds):
                started = time.perf_counter()
                await asyncio.to_thread(embedder.embed_documents, texts)
                raw_rates.append(len(texts) / (time.perf_counter() - started))

                kb = (await client.post("/internal/v1/kbs", json={"name": f"run{i}"})).json()
                started = time.perf_counter()
                created = (
                    await client.post(
                        f"/internal/v1/kbs/{kb['id']}/sources",
                        json={"type": "files", "config": {"path": str(corpus)}},
                    )
                ).json()
                while True:
                    job = (await client.get(f"/internal/v1/jobs/{created['job']['id']}")).json()
                    if job["status"] in ("succeeded", "failed"):
                        break
                    await asyncio.sleep(0.05)
                elapsed = time.perf_counter() - started
                assert job["status"] == "succeeded", job
                ingest_rates.append(job["chunks_embedded"] / elapsed)
                print(
                    f"round {i + 1}: raw {raw_rates[-1]:.1f} chunks/s, ingest {ingest_rates[-1]:.1f} chunks/s ({job['chunks_embedded']} chunks, {elapsed:.1f}s)"
                )
    raw, ingest = statistics.median(raw_rates), statistics.median(ingest_rates)
    return {
        "scenario": "retrieval-ingest",
        "model": model,
        "corpus": str(corpus),
        "chunks": len(texts),
        "cores": os.cpu_count(),
        "rounds": rounds,
        "raw_chunks_per_s": raw_rates,
        "ingest_chunks_per_s": ingest_rates,
        "median_raw": round(raw, 1),
        "median_ingest": round(ingest, 1),
        "ratio": round(ingest / raw, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--corpus", type=Path, default=RTD if RTD.is_dir() else ROOT / "demo" / "kb")
    args = parser.parse_args()
    result = asyncio.run(main_async(args.model, args.rounds, args.corpus))
    out = ROOT / "bench" / "results" / f"{datetime.now():%Y-%m-%d}-retrieval-ingest-{args.model}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(
        f"| model | chunks | raw embedding chunks/s (median) | ingestion chunks/s (median) | ratio |\n|---|---|---|---|---|\n"
        f"| {result['model']} | {result['chunks']} | {result['median_raw']} | {result['median_ingest']} | {result['ratio']} |"
    )


if __name__ == "__main__":
    main()
