"""Fixtures for the shared library's tests: a small app built with the shared pieces."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest_asyncio
from fastapi import FastAPI

from switchboard_shared.app import build_app
from switchboard_shared.health import Readiness
from switchboard_shared.settings import ServiceSettings


class DemoSettings(ServiceSettings):
    service_name = "demo"


def make_app(readiness: Readiness | None = None, **overrides: Any) -> FastAPI:
    settings = DemoSettings(**overrides)
    ready = readiness or Readiness()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        yield {"readiness": ready}

    return build_app(settings, title="demo", description="demo", lifespan=lifespan)


def client_for(app: FastAPI) -> httpx.AsyncClient:
    """An in-process client that also runs the app's lifespan state into each request."""

    async def with_state(
        scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        scope["state"] = dict(app.state.lifespan_state)
        await app(scope, receive, send)

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=with_state), base_url="http://test")


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app) as state:
        app.state.lifespan_state = state
        async with client_for(app) as client:
            yield client


@pytest_asyncio.fixture
async def demo_app() -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = make_app(internal_token="secret-token", max_body_bytes=100)
    async with running(app) as client:
        yield app, client
