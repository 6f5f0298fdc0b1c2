"""The pytest plugin every test suite loads: PostgreSQL and Redis servers, database URLs on both backends,
and a real OpenAI-compatible LLM server (llama.cpp with SmolLM2).

Servers are started from the installed binaries; without them tests skip, unless REQUIRE_SERVICES=1,
when they fail.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from switchboard_shared.testing.llama import llama_available
from switchboard_shared.testing.llama import llama_server as run_llama_server
from switchboard_shared.testing.servers import RedisServer, postgres_server


def services_required() -> bool:
    return os.environ.get("REQUIRE_SERVICES") == "1"


def unavailable(reason: str) -> None:
    if services_required():
        pytest.fail(f"REQUIRE_SERVICES=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def llama_server() -> Iterator[str]:
    """The base URL (without ``/v1``) of llama.cpp serving SmolLM2-135M-Instruct on a free port."""
    reason = llama_available()
    if reason is not None:
        unavailable(reason)
    with run_llama_server() as url:
        yield url


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    try:
        server = RedisServer()
        server.start()
    except (FileNotFoundError, TimeoutError, OSError) as exc:
        unavailable(f"Redis cannot start: {exc}")
        raise
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """A Redis URL with an empty database (the server is shared by the session)."""
    if redis_server.process is None:
        redis_server.start()
    from redis import Redis

    client = Redis.from_url(redis_server.url)
    client.flushdb()
    client.close()
    return redis_server.url


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    try:
        manager = postgres_server()
        url = manager.__enter__()
    except (FileNotFoundError, RuntimeError, OSError, TimeoutError) as exc:
        unavailable(f"PostgreSQL cannot start: {exc}")
        raise
    try:
        yield url
    finally:
        manager.__exit__(None, None, None)


async def _admin_async(url: str, statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def _admin(url: str, statement: str) -> None:
    """Run one admin statement, also from inside a running event loop (in a thread of its own)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, _admin_async(url, statement)).result()


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty database for one test, as a SQLAlchemy asyncpg URL."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    _admin(postgres_server_url, f'CREATE DATABASE "{name}"')
    base = postgres_server_url.rsplit("/", 1)[0]
    yield f"{base.replace('postgresql://', 'postgresql+asyncpg://', 1)}/{name}"
    _admin(postgres_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Runs the test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/test.db"
    url: str = request.getfixturevalue("postgres_url")
    return url
