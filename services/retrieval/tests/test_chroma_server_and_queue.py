"""The ingest/search path against a real Chroma server (``chroma run``), jobs through the arq Redis queue,
and the demo knowledge base bootstrapped at start-up."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from switchboard_shared.testing.servers import free_port

DEMO_KB = Path(__file__).resolve().parents[3] / "demo" / "kb"
# Citations link only to public addresses: the tests find documents by the path mapped onto this one.
PUBLIC = "https://help.example/"


async def _collections(url: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as client:
        response = await client.get(
            f"{url}/api/v2/tenants/default_tenant/databases/default_database/collections"
        )
        result: list[dict[str, Any]] = response.json()
        return result


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    if not Path(binary).exists():
        pytest.skip("the chroma CLI (chromadb package) is not installed")
    port = free_port()
    path = tmp_path_factory.mktemp("chroma-server")
    log = (path / "server.log").open("wb")
    process = subprocess.Popen(
        [binary, "run", "--path", str(path / "db"), "--port", str(port), "--host", "127.0.0.1"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            pytest.fail(f"chroma run exited: {(path / 'server.log').read_text()[-2000:]}")
        time.sleep(0.2)
    else:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail("chroma run did not become ready")
    yield url
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=20)
    log.close()


@pytest.mark.asyncio
async def test_ingest_resync_and_search_on_chroma_server(
    sqlite_service_with: Any, chroma_server: str, demo_copy: Path
) -> None:
    async with sqlite_service_with(chroma_url=chroma_server) as svc:
        ready = await svc.client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["checks"]["chroma"]["ok"]
        kb = await svc.create_kb("server")
        source, job = await svc.add_source(
            kb["id"], {"type": "files", "config": {"path": str(demo_copy / "ru"), "public_base_url": PUBLIC}}
        )
        files = len([p for p in (demo_copy / "ru").iterdir() if p.is_file()])
        assert job["status"] == "succeeded" and job["counts"]["documents_added"] == files
        hits = await svc.search(kb["id"], "можно ли платить частями", mode="vector")
        assert hits[0]["url"].endswith("oplata.md")
        (demo_copy / "ru" / "oplata.md").unlink()
        synced = await svc.sync(kb["id"], source["id"])
        assert synced["counts"]["documents_deleted"] == 1
        hits = await svc.search(kb["id"], "можно ли платить частями", mode="vector", top_k=20)
        assert all(not h["url"].endswith("oplata.md") for h in hits)
        collections = await _collections(chroma_server)
        assert any(c["name"].endswith(kb["id"]) and c["name"].startswith("t-acme-") for c in collections)
        assert (await svc.client.delete(f"/internal/v1/kbs/{kb['id']}")).status_code == 204
        collections = await _collections(chroma_server)
        assert not any(c["name"].endswith(kb["id"]) for c in collections)


@pytest.mark.asyncio
@pytest.mark.redis
async def test_jobs_run_through_the_arq_queue(
    sqlite_service_with: Any, redis_url: str, demo_copy: Path
) -> None:
    async with sqlite_service_with(redis_url=redis_url) as svc:
        assert svc.runtime.jobs.backend == "arq"
        kb = await svc.create_kb("queued")
        _, job = await svc.add_source(
            kb["id"], {"type": "files", "config": {"path": str(demo_copy / "en"), "public_base_url": PUBLIC}}
        )
        files = len([p for p in (demo_copy / "en").iterdir() if p.is_file()])
        assert job["status"] == "succeeded" and job["counts"]["documents_added"] == files
        assert job["attempts"] == 1
        hits = await svc.search(kb["id"], "Pay in 4 instalments")
        assert hits[0]["url"].endswith("payment.md")


@pytest.mark.asyncio
async def test_demo_kb_is_bootstrapped_and_resync_is_idempotent(sqlite_service_with: Any) -> None:
    demo = DEMO_KB
    async with sqlite_service_with(demo_kb_dir=str(demo)) as svc:
        listed = (await svc.client.get("/internal/v1/kbs", headers={"X-Tenant-ID": "demo"})).json()
        kb = listed["items"][0]
        assert kb["name"] == "demo"
        jobs = (await svc.client.get("/internal/v1/jobs", headers={"X-Tenant-ID": "demo"})).json()["items"]
        first = await _wait(svc, jobs[0]["id"])
        assert first["status"] == "succeeded" and first["counts"]["documents_added"] == 22
    async with sqlite_service_with(demo_kb_dir=str(demo)) as svc:
        jobs = (await svc.client.get("/internal/v1/jobs", headers={"X-Tenant-ID": "demo"})).json()["items"]
        assert len(jobs) == 2
        second = await _wait(svc, jobs[0]["id"])
        assert second["chunks_embedded"] == 0 and second["counts"]["documents_unchanged"] == 22
        response = await svc.client.post(
            "/internal/v1/search",
            json={"query": "сколько стоит доставка курьером"},
            headers={"X-Tenant-ID": "demo"},
        )
        docs = await svc.client.get(
            f"/internal/v1/kbs/{kb['id']}/documents", params={"limit": 100}, headers={"X-Tenant-ID": "demo"}
        )
        by_id = {d["id"]: d["uri"] for d in docs.json()["items"]}
        top = response.json()["hits"][0]
        # The demo folder has no public address: citations carry its title, never a path on the server.
        assert by_id[top["document_id"]].endswith("dostavka.md") and top["url"] is None


async def _wait(svc: Any, job_id: str) -> dict[str, Any]:
    import asyncio

    while True:
        job: dict[str, Any] = (
            await svc.client.get(f"/internal/v1/jobs/{job_id}", headers={"X-Tenant-ID": "demo"})
        ).json()
        if job["status"] in ("succeeded", "failed"):
            return job
        await asyncio.sleep(0.05)
