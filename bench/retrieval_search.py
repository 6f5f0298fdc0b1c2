"""Search latency (p50/p99) at 10k and 50k chunks against query embedding + raw Chroma query time, measured
in the same run on the same queries.

The knowledge base is filled directly through the service's own stores (SQL rows, the Chroma collection and
the BM25 index): chunk texts are sentences of the corpus recombined, and their vectors are normalised
mixes of real embeddings of those sentences, so building 50k chunks does not take an hour of embedding.
Each query then runs (a) through the service's hybrid search endpoint in-process and (b) as the baseline:
the model's ``embed_query`` plus one raw ``collection.query`` on the same collection, alternating. The
service's query cache is off, so both embed every query (a customer's question is new).

    .venv/bin/python bench/retrieval_search.py [--sizes 10000,50000] [--queries 200] [--model minilm]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RTD = ROOT.parent / "shared" / "kb" / "readthedocs"
HEADERS = {"X-Internal-Token": "bench", "X-Tenant-ID": "bench"}


def sentences(corpus: Path) -> list[str]:
    found: list[str] = []
    for path in sorted(corpus.rglob("*")):
        if path.suffix in (".rst", ".md", ".txt"):
            text = re.sub(r"\s+", " ", path.read_text(errors="replace"))
            found += [s.strip() for s in re.split(r"(?<=[.?!])\s", text) if 40 <= len(s.strip()) <= 300]
    return found


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def fill(
    rt: Any, tenant: str, size: int, base: list[str], base_vecs: np.ndarray, rng: random.Random
) -> str:
    from switchboard_retrieval.index.vectors import collection_name
    from switchboard_retrieval.ingestion.service import load_index_rows
    from switchboard_retrieval.models import ChunkRow, DocumentRow, KnowledgeBaseRow, SourceRow

    async with rt.sessionmaker() as session:
        kb = KnowledgeBaseRow(
            tenant_id=tenant,
            name=f"scale-{size}",
            description="",
            embedding_model=rt.settings.default_embedding_model,
            index_version=1,
        )
        session.add(kb)
        await session.flush()
        source = SourceRow(
            kb_id=kb.id,
            tenant_id=tenant,
            type="files",
            name="synthetic",
            config={"path": "/synthetic"},
            tags=[],
        )
        session.add(source)
        await session.flush()
        docs = []
        for d in range(size // 20):
            doc = DocumentRow(
                id=f"{kb.id[:16]}{d:016d}",
                kb_id=kb.id,
                source_id=source.id,
                tenant_id=tenant,
                uri=f"doc{d}.md",
                name=f"doc{d}.md",
                title=f"Page {d}",
                content_hash="x",
                status="ok",
                chunk_count=20,
            )
            docs.append(doc)
        session.add_all(docs)
        await session.flush()
        name = collection_name(tenant, kb.id)
        batch_ids, batch_vecs, rows = [], [], []
        for i in range(size):
            a, b, c = rng.randrange(len(base)), rng.randrange(len(base)), rng.randrange(len(base))
            text = " ".join((base[a], base[b], base[c]))
            vec = base_vecs[a] + 0.6 * base_vecs[b] + 0.4 * base_vecs[c]
            chunk_id = f"{kb.id[:8]}{i:032d}"
            doc = docs[i // 20]
            rows.append(
                ChunkRow(
                    id=chunk_id,
                    kb_id=kb.id,
                    source_id=source.id,
                    document_id=doc.id,
                    ordinal=i % 20,
                    text=text,
                    title=doc.title,
                    heading_path=[],
                    url=doc.uri,
                    language="en",
                    tags=[],
                )
            )
            batch_ids.append(chunk_id)
            batch_vecs.append(vec / np.linalg.norm(vec))
            if len(batch_ids) == 2000:
                await rt.vectors.upsert(
                    name,
                    batch_ids,
                    np.array(batch_vecs, dtype=np.float32),
                    [{"source_id": source.id}] * len(batch_ids),
                )
                batch_ids, batch_vecs = [], []
        if batch_ids:
            await rt.vectors.upsert(
                name,
                batch_ids,
                np.array(batch_vecs, dtype=np.float32),
                [{"source_id": source.id}] * len(batch_ids),
            )
        session.add_all(rows)
        await session.commit()
        await rt.bm25.rebuild(kb.id, 1, await load_index_rows(session, kb.id))
        return kb.id


async def main_async(
    sizes: list[int], n_queries: int, model: str, corpus: Path, base_count: int
) -> dict[str, Any]:
    from switchboard_retrieval.embeddings.encoders import CachedQueries
    from switchboard_retrieval.index.vectors import collection_name
    from switchboard_retrieval.main import create_app
    from switchboard_retrieval.settings import RetrievalSettings
    from switchboard_shared.logging import configure_logging

    configure_logging(service="bench", level="WARNING", json=False)
    rng = random.Random(7)
    data = Path(tempfile.mkdtemp(prefix="sb-search-bench-"))
    settings = RetrievalSettings(
        data_dir=str(data),
        internal_token="bench",
        environment="test",
        scheduler_interval_seconds=0,
        default_embedding_model=model,
    )
    app = create_app(settings)
    base = sentences(corpus)[:base_count]
    results: dict[str, Any] = {
        "scenario": "retrieval-search",
        "model": model,
        "cores": os.cpu_count(),
        "sizes": {},
    }
    async with app.router.lifespan_context(app) as state:

        async def asgi(scope: Any, receive: Any, send: Any) -> None:
            scope["state"] = dict(state)
            await app(scope, receive, send)

        rt = state["runtime"]
        embedder = rt.embeddings.get(model)
        # Every query embedded, in the service and in the baseline: a customer's question is new, and the
        # service's query cache (which serves the repeats within one turn: search, curated check, similarity)
        # would otherwise answer the baseline's embedding of the query the service just embedded.
        if isinstance(embedder, CachedQueries):
            embedder.capacity = 0
        started = time.perf_counter()
        base_vecs = embedder.embed_documents(base)
        print(f"embedded {len(base)} base sentences in {time.perf_counter() - started:.1f}s")
        queries = [" ".join(s.split()[:8]) + "?" for s in rng.sample(base, n_queries)]
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=asgi), base_url="http://b", headers=HEADERS, timeout=600
        ) as client:
            for size in sizes:
                started = time.perf_counter()
                kb_id = await fill(rt, "bench", size, base, base_vecs, rng)
                print(f"filled {size} chunks in {time.perf_counter() - started:.1f}s")
                collection = rt.vectors.client.get_collection(
                    collection_name("bench", kb_id), embedding_function=None
                )
                for q in queries[:10]:  # warm-up both paths
                    await client.post(f"/internal/v1/kbs/{kb_id}/search", json={"query": q, "top_k": 6})
                    collection.query(
                        query_embeddings=[embedder.embed_query(q)], n_results=30, include=["distances"]
                    )
                service_ms: list[float] = []
                inside_ms: list[float] = []
                vector_mode_ms: list[float] = []
                baseline_ms: list[float] = []
                for q in queries:
                    t0 = time.perf_counter()
                    response = await client.post(
                        f"/internal/v1/kbs/{kb_id}/search", json={"query": q, "top_k": 6}
                    )
                    service_ms.append((time.perf_counter() - t0) * 1000)
                    assert response.status_code == 200 and response.json()["hits"], response.text
                    inside_ms.append(response.json()["took_ms"])  # the search itself, without HTTP
                    t0 = time.perf_counter()
                    vector_only = await client.post(
                        f"/internal/v1/kbs/{kb_id}/search", json={"query": q, "top_k": 6, "mode": "vector"}
                    )
                    vector_mode_ms.append((time.perf_counter() - t0) * 1000)
                    assert vector_only.status_code == 200, vector_only.text
                    t0 = time.perf_counter()
                    vector = embedder.embed_query(q)
                    collection.query(query_embeddings=[vector], n_results=30, include=["distances"])
                    baseline_ms.append((time.perf_counter() - t0) * 1000)
                row = {
                    "service_p50_ms": round(statistics.median(service_ms), 2),
                    "service_p99_ms": round(pct(service_ms, 0.99), 2),
                    "baseline_p50_ms": round(statistics.median(baseline_ms), 2),
                    "baseline_p99_ms": round(pct(baseline_ms, 0.99), 2),
                    # Where the difference goes: the search inside the service (hybrid, without HTTP),
                    # and the same endpoint in vector-only mode (no BM25, no fusion).
                    "service_inside_p50_ms": round(statistics.median(inside_ms), 2),
                    "vector_mode_p50_ms": round(statistics.median(vector_mode_ms), 2),
                }
                row["ratio_p50"] = round(row["service_p50_ms"] / row["baseline_p50_ms"], 3)
                row["ratio_p99"] = round(row["service_p99_ms"] / row["baseline_p99_ms"], 3)
                results["sizes"][str(size)] = row
                print(size, row)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,50000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--model", default="minilm")
    parser.add_argument(
        "--base", type=int, default=600, help="Distinct sentences embedded to build chunks from"
    )
    parser.add_argument("--corpus", type=Path, default=RTD if RTD.is_dir() else ROOT / "demo" / "kb")
    args = parser.parse_args()
    result = asyncio.run(
        main_async([int(s) for s in args.sizes.split(",")], args.queries, args.model, args.corpus, args.base)
    )
    out = ROOT / "bench" / "results" / f"{datetime.now():%Y-%m-%d}-retrieval-search-{args.model}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(
        "| chunks | hybrid search p50 / p99 ms | embed + raw Chroma p50 / p99 ms | ratio p50 / p99 |\n|---|---|---|---|"
    )
    for size, row in result["sizes"].items():
        print(
            f"| {size} | {row['service_p50_ms']} / {row['service_p99_ms']} | {row['baseline_p50_ms']} / {row['baseline_p99_ms']} | {row['ratio_p50']} / {row['ratio_p99']} |"
        )


if __name__ == "__main__":
    main()
