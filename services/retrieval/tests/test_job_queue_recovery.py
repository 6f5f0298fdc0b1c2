"""The arq job queue keeps SQL's promise: a job whose worker process was killed is resumed by another
replica once its lease runs out (and not before: a live replica's job is not taken), the worker survives a
Redis restart, and jobs enqueued while Redis was down or lost with it still run."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from sqlalchemy import select

from switchboard_retrieval.main import create_app
from switchboard_retrieval.models import IngestionJobRow
from switchboard_shared.testing.processes import ServiceProcess
from switchboard_shared.testing.servers import RedisServer, free_port, serve_app

from .conftest import HEADERS, TOKEN, Running, make_settings, running

pytestmark = [pytest.mark.asyncio, pytest.mark.redis]

LEASE_SECONDS = 3.0


def write_articles(directory: Path, count: int) -> None:
    directory.mkdir(parents=True)
    for n in range(count):
        body = f"# Article {n}\n\n" + f"Paragraph {n} about topic {n} and its many details. " * 150
        (directory / f"article-{n}.md").write_text(body)


async def job_row(svc: Running, job_id: str) -> IngestionJobRow:
    async with svc.runtime.sessionmaker() as session:
        job = await session.scalar(select(IngestionJobRow).where(IngestionJobRow.id == job_id))
    assert job is not None
    return job


class GatedSite:
    """A local site of ``count`` article pages listed in a sitemap, whose pages from ``hold_from`` on are
    answered only once the test opens the gate: a job crawling it stays running, deterministically, for as
    long as the test needs."""

    def __init__(self, count: int, hold_from: int) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.count = count
        self.hold_from = hold_from
        self.gate = asyncio.Event()
        self.held = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        if request.path == "/sitemap.xml":
            urls = "".join(f"<url><loc>{self.base}/article-{n}.html</loc></url>" for n in range(self.count))
            body = f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'
            return web.Response(text=body, content_type="application/xml")
        name = request.path.removeprefix("/").removesuffix(".html")
        if not name.startswith("article-"):
            return web.Response(status=404, text="not found")
        n = int(name.removeprefix("article-"))
        if n >= self.hold_from:
            self.held.set()
            await self.gate.wait()
        text = f"Paragraph {n} about topic {n} and its many details. " * 150
        html = f"<html><head><title>Article {n}</title></head><body><main><h1>Article {n}</h1><p>{text}</p></main></body></html>"
        return web.Response(text=html, content_type="text/html")

    async def __aenter__(self) -> GatedSite:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self.handle)
        self.runner = await serve_app(app, self.port)
        return self

    async def __aexit__(self, *_: object) -> None:
        self.gate.set()
        await self.runner.cleanup()


@pytest.mark.postgres
async def test_job_of_killed_worker_resumes_on_another_replica(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    pages = 12
    async with GatedSite(pages, hold_from=4) as site:
        env = {
            "SWITCHBOARD_ENVIRONMENT": "test",
            "SWITCHBOARD_INTERNAL_TOKEN": TOKEN,
            "SWITCHBOARD_REDIS_URL": redis_url,
            "SWITCHBOARD_DATA_DIR": str(tmp_path / "replica-a"),
            "SWITCHBOARD_LOG_JSON": "true",
            "RETRIEVAL_DATABASE_URL": postgres_url,
            "RETRIEVAL_DEFAULT_EMBEDDING_MODEL": "minilm",
            "RETRIEVAL_EMBEDDING_THREADS": "1",
            "RETRIEVAL_SCHEDULER_INTERVAL_SECONDS": "0",
            "RETRIEVAL_JOB_LEASE_SECONDS": str(LEASE_SECONDS),
            "RETRIEVAL_URL_ALLOWLIST": json.dumps(["127.0.0.0/8"]),
            # A's fetch of the held page waits for as long as the test keeps the gate shut.
            "RETRIEVAL_FETCH_TIMEOUT": "600",
        }
        replica_a = ServiceProcess("switchboard_retrieval", env, name="retrieval-a").start(ready_timeout=120)
        try:
            async with httpx.AsyncClient(base_url=replica_a.url, headers=HEADERS, timeout=30) as a:
                kb = (await a.post("/internal/v1/kbs", json={"name": "killed"})).json()
                created = await a.post(
                    f"/internal/v1/kbs/{kb['id']}/sources",
                    json={"type": "sitemap", "config": {"url": f"{site.base}/sitemap.xml"}},
                )
                assert created.status_code == 201, created.text
                job_id = created.json()["job"]["id"]
                await asyncio.wait_for(site.held.wait(), timeout=120)  # A is mid-job, on the held page
                job = (await a.get(f"/internal/v1/jobs/{job_id}")).json()
                assert job["status"] == "running", job

            # Replica B joins while A runs the job: it must leave A's job alone for as long as A renews it.
            settings = make_settings(
                postgres_url,
                tmp_path / "replica-b",
                redis_url=redis_url,
                job_lease_seconds=LEASE_SECONDS,
            )
            async with running(create_app(settings), settings) as b:
                held = await job_row(b, job_id)
                assert held.lease_owner is not None and held.lease_owner.startswith(
                    f"{socket.gethostname()}/"
                )
                assert held.lease_owner != b.runtime.jobs.owner  # type: ignore[attr-defined]
                await asyncio.sleep(LEASE_SECONDS * 1.5)
                assert await b.runtime.jobs.recover_orphans() == []  # type: ignore[attr-defined]
                still = await job_row(b, job_id)
                assert (still.status, still.lease_owner, still.attempts) == ("running", held.lease_owner, 1)

                replica_a.stop(kill=True)
                killed_at = asyncio.get_running_loop().time()
                site.gate.set()
                done = await b.wait_job(job_id, timeout=120)
                took = asyncio.get_running_loop().time() - killed_at
                assert done["status"] == "succeeded", done
                assert done["attempts"] == 2, done
                assert done["documents_done"] == pages and done["documents_failed"] == 0, done
                final = await job_row(b, job_id)
                assert final.queue_generation == 1
                for _ in range(50):  # B gives the lease up right after the job's final write
                    if (await job_row(b, job_id)).lease_owner is None:
                        break
                    await asyncio.sleep(0.1)
                assert (await job_row(b, job_id)).lease_owner is None
                # The lease ran out (3 s) and B's upkeep (every 1 s) put the job back: well before arq's 6 h.
                assert took < 90, took
                hits = await b.search(kb["id"], "topic 9 and its many details", top_k=3)
                assert any(h["title"] == "Article 9" for h in hits), hits
        finally:
            replica_a.stop(kill=True)


async def test_worker_survives_a_redis_restart(sqlite_service_with: Any, tmp_path: Path) -> None:
    redis = RedisServer()
    redis.start()
    try:
        docs = tmp_path / "docs"
        docs.mkdir()
        (docs / "a.md").write_text("# A\n\nShipping takes three days.")
        async with sqlite_service_with(redis_url=redis.url, job_lease_seconds=LEASE_SECONDS) as svc:
            assert svc.runtime.jobs.backend == "arq"
            kb = await svc.create_kb("redis restart")
            source, job = await svc.add_source(kb["id"], {"type": "files", "config": {"path": str(docs)}})
            assert job["status"] == "succeeded"

            redis.stop()
            await asyncio.sleep(1.0)
            # Enqueued while Redis is down: the request still succeeds, the row waits as 'queued'.
            (docs / "b.md").write_text("# B\n\nReturns are free within thirty days.")
            during = await svc.client.post(f"/internal/v1/kbs/{kb['id']}/sources/{source['id']}/sync")
            assert during.status_code == 202, during.text
            assert during.json()["status"] == "queued"

            redis.start()  # empty: the queue entry, if any had been written, is gone with it
            synced = await svc.wait_job(during.json()["id"], timeout=60)
            assert synced["status"] == "succeeded" and synced["counts"]["documents_added"] == 1, synced

            (docs / "c.md").write_text("# C\n\nWarranty lasts two years.")
            after = await svc.sync(kb["id"], source["id"])
            assert after["status"] == "succeeded" and after["counts"]["documents_added"] == 1, after
            hits = await svc.search(kb["id"], "warranty two years", mode="bm25")
            assert hits and hits[0]["title"] == "C"
    finally:
        redis.cleanup()


async def test_stopping_mid_job_hands_the_job_back(
    sqlite_service_with: Any, redis_url: str, tmp_path: Path
) -> None:
    """A replica shut down gracefully while it runs a job gives the job back at once (no lease wait), and
    the next replica finishes it."""
    articles = tmp_path / "articles"
    write_articles(articles, 40)
    async with sqlite_service_with(redis_url=redis_url, job_lease_seconds=60, embed_batch_size=8) as svc:
        kb = await svc.create_kb("handed back")
        created = await svc.client.post(
            f"/internal/v1/kbs/{kb['id']}/sources", json={"type": "files", "config": {"path": str(articles)}}
        )
        job_id = created.json()["job"]["id"]
        deadline = asyncio.get_running_loop().time() + 60
        while (job := await job_row(svc, job_id)).status != "running" or job.documents_done < 2:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)
    async with sqlite_service_with(redis_url=redis_url, job_lease_seconds=60) as svc:
        handed = await job_row(svc, job_id)
        assert handed.status in ("queued", "running") and handed.queue_generation == 1
        done = await svc.wait_job(job_id, timeout=120)
        assert done["status"] == "succeeded" and done["documents_done"] == 40, done
