"""Fixtures of the gateway's tests: the app on SQLite and PostgreSQL, a fake upstream fleet over real HTTP,
an operator client, a tenant with keys."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from switchboard_gateway.main import create_app
from switchboard_gateway.settings import GatewaySettings

from .upstream_server import FakeUpstream

OPERATOR_TOKEN = "operator-test-token"
INTERNAL_TOKEN = "internal-test-token"
SHOP_ORIGIN = "https://shop.example"


def client_for(app: FastAPI, **kwargs: Any) -> httpx.AsyncClient:
    async def with_state(
        scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        scope["state"] = dict(app.state.lifespan_state)
        await app(scope, receive, send)

    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=with_state, client=("203.0.113.9", 5000)),
        base_url="http://gateway.test",
        **kwargs,
    )


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app) as state:
        app.state.lifespan_state = state
        async with client_for(app) as client:
            yield client


@pytest_asyncio.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    server = FakeUpstream()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def make_settings(database_url: str, upstream_url: str, tmp_path: Path, **overrides: Any) -> GatewaySettings:
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": database_url,
        "admin_token": OPERATOR_TOKEN,
        "internal_token": INTERNAL_TOKEN,
        "chat_url": upstream_url,
        "retrieval_url": upstream_url,
        "integrations_url": upstream_url,
        "analytics_url": upstream_url,
        "data_dir": str(tmp_path),
        "static_dir": tmp_path / "static",
        "http_retries": 0,
        **overrides,
    }
    return GatewaySettings(**values)


@dataclass
class Env:
    app: FastAPI
    client: httpx.AsyncClient
    upstream: FakeUpstream
    tenant_id: str
    identity_secret: str
    widget_key: str
    server_key: str
    admin_key: str

    def server(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.server_key}"}

    def widget(self, origin: str = SHOP_ORIGIN, anonymous: str | None = "anon-visitor-1") -> dict[str, str]:
        headers = {"X-API-Key": self.widget_key, "Origin": origin}
        if anonymous:
            headers["X-Anonymous-ID"] = anonymous
        return headers


OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


async def create_tenant(client: httpx.AsyncClient, tenant_id: str, **fields: Any) -> dict[str, Any]:
    response = await client.post(
        "/v1/admin/tenants", json={"id": tenant_id, "name": tenant_id.title(), **fields}, headers=OPERATOR
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def create_key(client: httpx.AsyncClient, tenant_id: str, scope: str, **fields: Any) -> str:
    response = await client.post(
        f"/v1/admin/tenants/{tenant_id}/keys", json={"scope": scope, **fields}, headers=OPERATOR
    )
    assert response.status_code == 201, response.text
    key: str = response.json()["key"]
    return key


@asynccontextmanager
async def gateway_env(
    database_url: str, upstream: FakeUpstream, tmp_path: Path, **overrides: Any
) -> AsyncIterator[Env]:
    app = create_app(make_settings(database_url, upstream.url, tmp_path, **overrides))
    async with running(app) as client:
        tenant = await create_tenant(client, "acme")
        widget = await create_key(
            client, "acme", "widget", allowed_origins=[SHOP_ORIGIN, "http://localhost:*"]
        )
        server = await create_key(client, "acme", "server")
        admin = await create_key(client, "acme", "admin")
        yield Env(app, client, upstream, "acme", tenant["identity_secret"], widget, server, admin)


@pytest_asyncio.fixture
async def env(upstream: FakeUpstream, tmp_path: Path) -> AsyncIterator[Env]:
    """The gateway on SQLite (the per-backend tests use ``database_url`` themselves)."""
    async with gateway_env(f"sqlite+aiosqlite:///{tmp_path}/gw.db", upstream, tmp_path) as environment:
        yield environment


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/gw.db"
