"""CPU the curated-answer check adds to a message: the retrieval app in-process on SQLite.

* ``check``: what a search asking for curated answers does on top of the search itself, measured alone:
  the tenant's version lookup (one SQL primary-key read) and the match of the query vector the search
  already computed against the tenant's in-memory wordings; process CPU time (every thread, the SQLite
  worker's included) per call, at 20, 200 and 2,000 entries of three wordings each (512-d, like USE).
* ``no entries``: the same for a tenant without curated answers (the lookup finds nothing).
* ``search``: a full hybrid search of the demo knowledge base with ``curated`` off and on, alternating, as
  a check that nothing else moved (the query embedding dominates and is noisy; the isolated figure is the
  one to read).

    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/curated_check.py [--calls 2000] [--searches 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result

from switchboard_retrieval.curated import repository
from switchboard_retrieval.curated import service as curated
from switchboard_retrieval.curated.models import CuratedAnswerRow
from switchboard_retrieval.main import create_app
from switchboard_retrieval.settings import RetrievalSettings

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-token"
DIM = 512
WORDINGS = 3


def cpu_us(samples: list[int]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "mean_us": round(statistics.fmean(samples) / 1000, 1),
        "p50_us": round(ordered[len(ordered) // 2] / 1000, 1),
        "p99_us": round(ordered[int(len(ordered) * 0.99)] / 1000, 1),
    }


async def fill(rt: Any, tenant_id: str, entries: int) -> None:
    rng = np.random.default_rng(7)
    async with rt.sessionmaker() as session:
        for i in range(entries):
            vectors = rng.standard_normal((WORDINGS, DIM)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            session.add(
                CuratedAnswerRow(
                    tenant_id=tenant_id,
                    question=f"question {i}",
                    variants=[f"variant {i}.{j}" for j in range(1, WORDINGS)],
                    answer=f"answer {i}",
                    language="en" if i % 2 else "ru",
                    tags=[],
                    embedding_model="use-multilingual",
                    vectors=vectors.tobytes(),
                    dimensions=DIM,
                    hit_count=0,
                )
            )
        await session.flush()
        await repository.bump_version(session, tenant_id=tenant_id)
        await session.commit()


async def check_cpu(rt: Any, tenant_id: str, calls: int) -> dict[str, float]:
    rng = np.random.default_rng(11)
    query = rng.standard_normal(DIM).astype(np.float32)
    query /= np.linalg.norm(query)
    vectors = {"use-multilingual": query}
    samples = []
    async with rt.sessionmaker() as session:
        await curated.tenant_index(session, rt, tenant_id=tenant_id)  # the first call loads the index
        for _ in range(calls):
            started = time.process_time_ns()
            found = await curated.tenant_index(session, rt, tenant_id=tenant_id)
            if found is not None:
                index, threshold = found
                curated.match(rt, index, threshold, vectors, language="en", kb_ids=None)
            samples.append(time.process_time_ns() - started)
    return cpu_us(samples)


async def search_cpu(client: httpx.AsyncClient, searches: int) -> dict[str, dict[str, float]]:
    queries = [
        "How much does courier delivery cost?",
        "Сколько хранится заказ в пункте выдачи?",
        "Can I pay in instalments?",
        "Как вернуть товар?",
    ]
    samples: dict[str, list[int]] = {"off": [], "on": []}
    for i in range(searches):
        for mode in ("off", "on") if i % 2 else ("on", "off"):
            body = {"query": queries[i % len(queries)], "curated": mode == "on"}
            started = time.process_time_ns()
            response = await client.post("/internal/v1/search", json=body)
            samples[mode].append(time.process_time_ns() - started)
            assert response.status_code == 200, response.text
    return {mode: cpu_us(values) for mode, values in samples.items()}


async def main(calls: int, searches: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = RetrievalSettings(
            database_url=f"sqlite+aiosqlite:///{tmp}/bench.db",
            data_dir=f"{tmp}/data",
            internal_token=TOKEN,
            environment="development",
            log_json=False,
            scheduler_interval_seconds=0,
            demo_kb_dir=str(ROOT / "demo" / "kb"),
            embedding_threads=1,
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app) as state:
            rt = state["runtime"]

            async def with_state(scope: Any, receive: Any, send: Any) -> None:
                scope["state"] = dict(state)
                await app(scope, receive, send)

            headers = {"X-Internal-Token": TOKEN, "X-Tenant-ID": "demo"}
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=with_state),
                base_url="http://b",
                headers=headers,
                timeout=120,
            ) as client:
                # The demo knowledge base's first sync runs in this process: wait for it, so that the CPU
                # measured below is the check's alone.
                for _ in range(1200):
                    jobs = (await client.get("/internal/v1/jobs")).json()["items"]
                    if jobs and all(job["status"] in ("succeeded", "failed") for job in jobs):
                        break
                    await asyncio.sleep(0.5)
                await asyncio.sleep(2)
                results: dict[str, Any] = {"check": {}}
                results["no_entries"] = await check_cpu(rt, "nobody", calls)
                print(f"no entries: {results['no_entries']}")
                for entries in (20, 200, 2000):
                    tenant = f"t{entries}"
                    await fill(rt, tenant, entries)
                    results["check"][str(entries)] = await check_cpu(rt, tenant, calls)
                    print(f"check at {entries} entries: {results['check'][str(entries)]}")
                await fill(rt, "demo", 20)
                await client.post("/internal/v1/search", json={"query": "warm up", "curated": True})
                results["search"] = await search_cpu(client, searches)
                print(f"search: {results['search']}")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--searches", type=int, default=60)
    args = parser.parse_args()
    outcome = asyncio.run(main(args.calls, args.searches))
    rows = [{"case": "check, tenant without curated answers", **outcome["no_entries"]}]
    rows += [{"case": f"check, {n} entries x {WORDINGS} wordings", **v} for n, v in outcome["check"].items()]
    rows += [
        {"case": f"whole search (demo KB), curated {mode}", **v} for mode, v in outcome["search"].items()
    ]
    path = write_result(
        "curated_check",
        rows,
        notes="Process CPU per call (all threads). The check is what a search asking for curated answers adds; "
        f"{args.calls} calls per row, {args.searches} searches per mode (alternating); "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')} (1 keeps BLAS threads from "
        "spinning into the whole-search figures).",
    )
    print(json.dumps(rows, indent=1))
    print(f"written {path}")
