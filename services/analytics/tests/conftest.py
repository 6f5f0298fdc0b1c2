"""Fixtures of the analytics tests: the app on SQLite and PostgreSQL, an in-process client, event factories."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from switchboard_analytics.main import create_app
from switchboard_analytics.settings import AnalyticsSettings
from switchboard_shared.platform import Platform

TOKEN = "analytics-test-token"
HEADERS = {"X-Internal-Token": TOKEN}


def make_settings(database_url: str, tmp_path: Path, **overrides: Any) -> AnalyticsSettings:
    return AnalyticsSettings(
        database_url=database_url,
        data_dir=str(tmp_path),
        internal_token=TOKEN,
        environment="test",
        log_json=False,
        **{"pseudonym_salt": "analytics-test-salt", **overrides},
    )


@dataclass
class Running:
    client: httpx.AsyncClient
    platform: Platform
    state: dict[str, Any]


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[Running]:
    async with app.router.lifespan_context(app) as state:

        async def with_state(
            scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
        ) -> None:
            scope["state"] = dict(state)
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=with_state)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=HEADERS) as client:
            yield Running(client, state["platform"], state)


@pytest_asyncio.fixture
async def service(database_url: str, tmp_path: Path) -> AsyncIterator[Running]:
    async with running(create_app(make_settings(database_url, tmp_path))) as handle:
        yield handle


@pytest.fixture
def client(service: Running) -> httpx.AsyncClient:
    return service.client


def event(
    type: str,
    *,
    at: datetime,
    tenant_id: str = "t1",
    conversation_id: str | None = None,
    end_user_id: str | None = None,
    properties: dict[str, Any] | None = None,
    event_id: str | None = None,
    channel: str | None = "web",
) -> dict[str, Any]:
    return {
        "id": event_id or uuid.uuid4().hex,
        "type": type,
        "tenant_id": tenant_id,
        "occurred_at": at.isoformat(),
        "source": "chat",
        "conversation_id": conversation_id,
        "end_user_id": end_user_id,
        "channel": channel,
        "properties": properties or {},
    }


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.fixture
def make_event() -> Callable[..., dict[str, Any]]:
    return event


@pytest.fixture
def start_service(database_url: str, tmp_path: Path) -> Callable[..., AbstractAsyncContextManager[Running]]:
    """Start the app with settings overrides (on both backends)."""

    def start(**overrides: Any) -> AbstractAsyncContextManager[Running]:
        return running(create_app(make_settings(database_url, tmp_path, **overrides)))

    return start
