import httpx
import pytest
from fastapi import FastAPI, Request

from switchboard_shared.request_context import TRACEPARENT_RE, propagation_headers


def add_echo(app: FastAPI) -> None:
    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    @app.get("/internal/v1/ping")
    async def internal_ping() -> dict[str, str]:
        return {"pong": "yes"}

    @app.get("/context")
    async def context() -> dict[str, str]:
        return propagation_headers()


@pytest.mark.asyncio
async def test_request_id_is_accepted_or_generated_and_echoed(
    demo_app: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = demo_app
    add_echo(app)
    given = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    generated = await client.get("/healthz")
    assert len(generated.headers["x-request-id"]) == 32
    hostile = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert hostile.headers["x-request-id"] != "bad id\twith spaces"


@pytest.mark.asyncio
async def test_traceparent_continues_the_trace_on_outbound_calls(
    demo_app: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = demo_app
    add_echo(app)
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    incoming = f"00-{trace_id}-00f067aa0ba902b7-01"
    headers = (await client.get("/context", headers={"traceparent": incoming, "X-Request-ID": "r1"})).json()
    assert headers["X-Request-ID"] == "r1"
    match = TRACEPARENT_RE.match(headers["traceparent"])
    assert match and match.group(1) == trace_id and match.group(2) != "00f067aa0ba902b7"


@pytest.mark.asyncio
async def test_body_size_limit(demo_app: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, client = demo_app
    add_echo(app)
    assert (await client.post("/echo", content=b"x" * 100)).json() == {"size": 100}
    declared = await client.post("/echo", content=b"x" * 101)
    assert declared.status_code == 413
    assert declared.json()["error"]["code"] == "payload_too_large"

    async def chunks():  # no Content-Length: counted while streaming
        for _ in range(5):
            yield b"y" * 50

    streamed = await client.post("/echo", content=chunks())
    assert streamed.status_code == 413


@pytest.mark.asyncio
async def test_internal_routes_need_the_internal_token(demo_app: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, client = demo_app
    add_echo(app)
    assert (await client.get("/internal/v1/ping")).status_code == 401
    assert (await client.get("/internal/v1/ping", headers={"X-Internal-Token": "wrong"})).status_code == 401
    ok = await client.get("/internal/v1/ping", headers={"X-Internal-Token": "secret-token"})
    assert ok.status_code == 200 and ok.json() == {"pong": "yes"}


@pytest.mark.asyncio
async def test_storage_outage_in_middleware_is_503_with_request_id() -> None:
    """An outage met outside the routes (pure ASGI middleware, like the gateway's key lookup) is a 503 too."""
    from starlette.types import Receive, Scope, Send

    from .conftest import make_app, running

    app = make_app()

    class LooksUpKeys:
        def __init__(self, inner: object) -> None:
            self.inner = inner

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope.get("path") == "/keyed":
                raise ConnectionRefusedError("connect call failed ('127.0.0.1', 5432)")
            await self.inner(scope, receive, send)  # type: ignore[operator]

    from starlette.middleware import Middleware

    app.user_middleware.append(Middleware(LooksUpKeys))  # innermost, inside the shared middleware
    async with running(app) as client:
        response = await client.get("/keyed", headers={"X-Request-ID": "outage-1"})
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert response.json()["error"] == {
        "code": "service_unavailable",
        "message": "A storage backend is unavailable; try again shortly.",
        "request_id": "outage-1",
    }
