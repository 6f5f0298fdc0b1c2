"""Fixtures of the retrieval tests: the app on SQLite and PostgreSQL with embedded Chroma, an in-process
client, and helpers to wait for ingestion jobs."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from aiohttp import web
from fastapi import FastAPI

from switchboard_retrieval.main import create_app
from switchboard_retrieval.runtime import Runtime
from switchboard_retrieval.settings import RetrievalSettings
from switchboard_shared.testing.servers import free_port, serve_app

TOKEN = "retrieval-test-token"
TENANT = "acme"
HEADERS = {"X-Internal-Token": TOKEN, "X-Tenant-ID": TENANT}
REPO_ROOT = Path(__file__).resolve().parents[3]
DEMO_KB = REPO_ROOT / "demo" / "kb"
RTD_KB = REPO_ROOT.parent / "shared" / "kb" / "readthedocs"


def make_settings(database_url: str, tmp_path: Path, **overrides: Any) -> RetrievalSettings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "data_dir": str(tmp_path / "data"),
        "internal_token": TOKEN,
        "environment": "test",
        "log_json": False,
        "scheduler_interval_seconds": 0,
        "default_embedding_model": "minilm",
        "url_allowlist": ["127.0.0.0/8"],
        # Sources read the test's own folders (the service's data directory inside it stays refused).
        "files_roots": [str(tmp_path)],
        "embedding_threads": 1,
    }
    values.update(overrides)
    return RetrievalSettings(**values)


@dataclass
class Running:
    client: httpx.AsyncClient
    runtime: Runtime
    settings: RetrievalSettings

    async def wait_job(self, job_id: str, timeout: float = 240.0) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            response = await self.client.get(f"/internal/v1/jobs/{job_id}")
            assert response.status_code == 200, response.text
            job: dict[str, Any] = response.json()
            if job["status"] in ("succeeded", "failed"):
                return job
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"job {job_id} still {job['status']}: {job}")
            await asyncio.sleep(0.05)

    async def create_kb(self, name: str = "help", **body: Any) -> dict[str, Any]:
        response = await self.client.post("/internal/v1/kbs", json={"name": name, **body})
        assert response.status_code == 201, response.text
        kb: dict[str, Any] = response.json()
        return kb

    async def add_source(self, kb_id: str, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        response = await self.client.post(f"/internal/v1/kbs/{kb_id}/sources", json=body)
        assert response.status_code == 201, response.text
        created = response.json()
        job = await self.wait_job(created["job"]["id"])
        return created["source"], job

    async def sync(self, kb_id: str, source_id: str) -> dict[str, Any]:
        response = await self.client.post(f"/internal/v1/kbs/{kb_id}/sources/{source_id}/sync")
        assert response.status_code == 202, response.text
        return await self.wait_job(response.json()["id"])

    async def search(self, kb_id: str, query: str, **body: Any) -> list[dict[str, Any]]:
        response = await self.client.post(f"/internal/v1/kbs/{kb_id}/search", json={"query": query, **body})
        assert response.status_code == 200, response.text
        hits: list[dict[str, Any]] = response.json()["hits"]
        return hits


@asynccontextmanager
async def running(app: FastAPI, settings: RetrievalSettings) -> AsyncIterator[Running]:
    async with app.router.lifespan_context(app) as state:

        async def with_state(
            scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
        ) -> None:
            scope["state"] = dict(state)
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=with_state)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", headers=HEADERS, timeout=30
        ) as client:
            yield Running(client, state["runtime"], settings)


@pytest_asyncio.fixture
async def service(database_url: str, tmp_path: Path) -> AsyncIterator[Running]:
    settings = make_settings(database_url, tmp_path)
    async with running(create_app(settings), settings) as handle:
        yield handle


@pytest_asyncio.fixture
async def sqlite_service(tmp_path: Path) -> AsyncIterator[Running]:
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path}/test.db", tmp_path)
    async with running(create_app(settings), settings) as handle:
        yield handle


@pytest.fixture
def demo_copy(tmp_path: Path) -> Path:
    """A writable copy of the demo knowledge base (tests edit, add and delete files in it)."""
    target = tmp_path / "kb"
    shutil.copytree(DEMO_KB, target)
    return target


@pytest.fixture
def service_with(database_url: str, tmp_path: Path) -> Callable[..., Any]:
    """``async with service_with(**settings overrides) as svc``: the app with changed settings."""

    def factory(**overrides: Any) -> Any:
        settings = make_settings(database_url, tmp_path, **overrides)
        return running(create_app(settings), settings)

    return factory


@pytest.fixture
def sqlite_service_with(tmp_path: Path) -> Callable[..., Any]:
    """``service_with`` on SQLite only, for tests whose subject is not the SQL backend."""

    def factory(**overrides: Any) -> Any:
        settings = make_settings(f"sqlite+aiosqlite:///{tmp_path}/test.db", tmp_path, **overrides)
        return running(create_app(settings), settings)

    return factory


@dataclass
class Site:
    base: str
    pages: dict[str, tuple[int, str, bytes]] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def add(self, path: str, body: str | bytes, content_type: str = "text/html", status: int = 200) -> None:
        self.pages[path] = (status, content_type, body.encode() if isinstance(body, str) else body)


@pytest_asyncio.fixture
async def site() -> AsyncIterator[Site]:
    """A local web server answering what the test puts in ``pages`` (sitemaps, pages, a Confluence API)."""
    port = free_port()
    state = Site(f"http://127.0.0.1:{port}")

    async def handle(request: web.Request) -> web.StreamResponse:
        state.requests.append((request.path_qs, dict(request.headers)))
        key = request.path_qs if request.path_qs in state.pages else request.path
        if key not in state.pages:
            return web.Response(status=404, text="not found")
        status, content_type, body = state.pages[key]
        return web.Response(status=status, body=body, content_type=content_type)

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handle)
    runner = await serve_app(app, port)
    yield state
    await runner.cleanup()
