"""The outbound client against a real local HTTP server (aiohttp) on a free port."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import pytest_asyncio
from aiohttp import web

from switchboard_shared.errors import AppError, ErrorCode
from switchboard_shared.http_client import ClientConfig, Downstream
from switchboard_shared.request_context import request_id_var, traceparent_var


@dataclass
class Upstream:
    url: str
    calls: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    fail_next: int = 0
    status_when_failing: int = 503


@pytest_asyncio.fixture
async def upstream() -> AsyncIterator[Upstream]:
    state = Upstream(url="")

    async def handle(request: web.Request) -> web.StreamResponse:
        state.calls.append((request.method, request.path, dict(request.headers)))
        if request.path == "/slow":
            await asyncio.sleep(1.0)
        if request.path == "/limited" and len(state.calls) == 1:
            return web.json_response({"error": "slow down"}, status=429, headers={"Retry-After": "0.2"})
        if state.fail_next > 0:
            state.fail_next -= 1
            return web.json_response(
                {"error": {"code": "x", "message": "down"}}, status=state.status_when_failing
            )
        if request.path == "/missing":
            return web.json_response({"error": {"code": "not_found", "message": "no such thing"}}, status=404)
        return web.json_response({"ok": True, "path": request.path})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.url = f"http://127.0.0.1:{port}"
    yield state
    await runner.cleanup()


def client(url: str, **config: object) -> Downstream:
    return Downstream("up", url, ClientConfig(**config))  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_propagates_request_id_and_traceparent(upstream: Upstream) -> None:
    downstream = client(upstream.url)
    request_id_var.set("rid-42")
    traceparent_var.set("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    try:
        response = await downstream.request("GET", "/thing")
        assert response.json() == {"ok": True, "path": "/thing"}
        headers = upstream.calls[0][2]
        assert headers["X-Request-ID"] == "rid-42"
        assert headers["traceparent"].startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-")
    finally:
        await downstream.close()


@pytest.mark.asyncio
async def test_retries_idempotent_calls_only(upstream: Upstream) -> None:
    downstream = client(upstream.url, retries=2)
    try:
        upstream.fail_next = 2
        assert (await downstream.request("GET", "/a")).status == 200
        assert len(upstream.calls) == 3

        upstream.calls.clear()
        upstream.fail_next = 1
        response = await downstream.request("POST", "/b", json={"x": 1})
        assert response.status == 503  # returned as is, not retried
        assert len(upstream.calls) == 1

        upstream.calls.clear()
        upstream.fail_next = 1
        assert (await downstream.request("POST", "/c", json={}, idempotent=True)).status == 200
        assert len(upstream.calls) == 2
    finally:
        await downstream.close()


@pytest.mark.asyncio
async def test_honours_retry_after_on_429(upstream: Upstream) -> None:
    downstream = client(upstream.url, retries=1)
    try:
        started = time.monotonic()
        response = await downstream.request("GET", "/limited")
        assert response.status == 200
        assert time.monotonic() - started >= 0.2
    finally:
        await downstream.close()


@pytest.mark.asyncio
async def test_timeout_becomes_504_app_error(upstream: Upstream) -> None:
    downstream = client(upstream.url, retries=0)
    try:
        with pytest.raises(AppError) as caught:
            await downstream.request("GET", "/slow", timeout=0.2)
        assert caught.value.code == ErrorCode.UPSTREAM_TIMEOUT and caught.value.status == 504
    finally:
        await downstream.close()


@pytest.mark.asyncio
async def test_json_request_maps_upstream_errors(upstream: Upstream) -> None:
    downstream = client(upstream.url, retries=0)
    try:
        with pytest.raises(AppError) as caught:
            await downstream.json_request("GET", "/missing")
        assert caught.value.status == 404 and caught.value.code == ErrorCode.NOT_FOUND
        assert caught.value.message == "no such thing"
    finally:
        await downstream.close()


@pytest.fixture
def moscow_time(monkeypatch: pytest.MonkeyPatch) -> object:
    """The process's local time three hours ahead of UTC, as on a host in Moscow."""
    monkeypatch.setenv("TZ", "MSK-3")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.asyncio
@pytest.mark.usefixtures("moscow_time")
async def test_breaker_state_does_not_depend_on_the_hosts_time_zone(upstream: Upstream) -> None:
    """aiobreaker keeps when a breaker opened in UTC but compares it with local time: readiness must not."""
    downstream = client(upstream.url, retries=0, breaker_fail_max=1, breaker_reset_seconds=0.3)
    try:
        upstream.fail_next = 1
        await downstream.request("GET", "/x")
        assert downstream.breaker_state == "open"
        await asyncio.sleep(0.35)
        assert downstream.breaker_state == "half-open"
    finally:
        await downstream.close()


@pytest.mark.asyncio
async def test_breaker_opens_fails_fast_and_closes_again(upstream: Upstream) -> None:
    downstream = client(upstream.url, retries=0, breaker_fail_max=3, breaker_reset_seconds=0.3)
    try:
        upstream.fail_next = 3
        for _ in range(3):
            await downstream.request("GET", "/x")
        assert downstream.breaker_state == "open"
        calls_before = len(upstream.calls)
        started = time.perf_counter()
        with pytest.raises(AppError) as caught:
            await downstream.request("GET", "/x")
        assert time.perf_counter() - started < 0.05
        assert caught.value.status == 503 and "circuit open" in caught.value.message
        assert len(upstream.calls) == calls_before  # failed fast: nothing sent
        await asyncio.sleep(0.35)
        assert downstream.breaker_state == "half-open"
        assert (await downstream.request("GET", "/x")).status == 200
        assert downstream.breaker_state == "closed"
    finally:
        await downstream.close()


@pytest.mark.asyncio
async def test_unreachable_downstream_is_503() -> None:
    from switchboard_shared.testing.servers import free_port

    downstream = client(f"http://127.0.0.1:{free_port()}", retries=0)
    try:
        with pytest.raises(AppError) as caught:
            await downstream.request("GET", "/x")
        assert caught.value.code == ErrorCode.UPSTREAM_UNAVAILABLE
    finally:
        await downstream.close()


@pytest.mark.asyncio
async def test_stream_reads_chunks(upstream: Upstream) -> None:
    downstream = client(upstream.url)
    try:
        async with downstream.stream("POST", "/s", json={"q": 1}) as resp:
            body = await resp.read()
        assert b'"path":"/s"' in body.replace(b" ", b"")
    finally:
        await downstream.close()
