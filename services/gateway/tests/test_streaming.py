"""SSE through the proxy without buffering, client disconnect cancelling the upstream, both proxy clients.

These call the gateway as raw ASGI (``httpx.ASGITransport`` collects a whole body before returning it,
which would hide buffering): each body message is timestamped as the gateway sends it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import pytest_asyncio

from switchboard_shared.tokens import estimate_tokens

from .conftest import OPERATOR, Env, FakeUpstream, gateway_env
from .upstream_server import REPLY_TOKENS

TOKEN_DELAY = 0.15


@pytest_asyncio.fixture(params=["h1", "aiohttp"])
async def slow_env(
    request: pytest.FixtureRequest, upstream: FakeUpstream, tmp_path: Path
) -> AsyncIterator[Env]:
    upstream.token_delay = TOKEN_DELAY
    async with gateway_env(
        f"sqlite+aiosqlite:///{tmp_path}/gw.db", upstream, tmp_path, proxy_client=request.param
    ) as environment:
        yield environment


async def new_conversation(env: Env) -> str:
    response = await env.client.post("/v1/conversations", json={"end_user_id": "u"}, headers=env.server())
    cid: str = response.json()["id"]
    return cid


def asgi_scope(env: Env, path: str, headers: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 5000),
        "server": ("gateway.test", 80),
        "state": dict(env.app.state.lifespan_state),
    }


@pytest.mark.asyncio
async def test_sse_chunks_leave_as_they_arrive(slow_env: Env) -> None:
    env = slow_env
    cid = await new_conversation(env)
    body = orjson.dumps({"text": "refunds?"})
    headers = {
        **env.server(),
        "accept": "text/event-stream",
        "content-type": "application/json",
        "content-length": str(len(body)),
    }
    sent: list[tuple[float, dict[str, Any]]] = []
    delivered = False
    gone = asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append((time.monotonic(), message))

    started = time.monotonic()
    await env.app(asgi_scope(env, f"/v1/conversations/{cid}/messages", headers), receive, send)
    gone.set()
    assert sent[0][1]["status"] == 200
    token_times = [at - started for at, message in sent if b"event: token" in message.get("body", b"")]
    assert len(token_times) == len(REPLY_TOKENS)
    total = sent[-1][0] - started
    # The first token went out long before the stream ended: nothing waited for the whole body.
    assert token_times[0] < total - 2 * TOKEN_DELAY
    assert token_times[-1] - token_times[0] >= (len(REPLY_TOKENS) - 2) * TOKEN_DELAY


@pytest.mark.asyncio
async def test_a_client_leaving_mid_turn_stops_getting_tokens_and_still_pays(slow_env: Env) -> None:
    """Chat finishes a turn whoever listens (its answer is stored): the gateway stops sending to the client
    that left, reads the rest of the turn and charges every token it generated."""
    env = slow_env
    cid = await new_conversation(env)
    body = orjson.dumps({"text": "refunds?"})
    headers = {
        **env.server(),
        "accept": "text/event-stream",
        "content-type": "application/json",
        "content-length": str(len(body)),
    }
    delivered = False
    gone = asyncio.Event()
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if b"event: token" in message.get("body", b""):
            chunks.append(message["body"])
            gone.set()  # the browser tab closes right after the first token

    await asyncio.wait_for(
        env.app(asgi_scope(env, f"/v1/conversations/{cid}/messages", headers), receive, send), 5
    )
    assert len(chunks) < len(REPLY_TOKENS)
    assert not env.upstream.disconnected.is_set()
    usage = await env.client.get(f"/v1/admin/tenants/{env.tenant_id}/usage", headers=OPERATOR)
    generated = "".join(REPLY_TOKENS)
    assert usage.json()["tokens"] >= estimate_tokens("refunds?") + estimate_tokens(generated) - 1


@pytest.mark.asyncio
async def test_both_clients_forward_the_same(slow_env: Env) -> None:
    env = slow_env
    for _ in range(3):  # pooled connections are reused
        response = await env.client.get("/v1/kbs?x=1", headers={**env.server(), "Accept-Encoding": "gzip"})
        assert response.status_code == 200
        assert response.json()["query"] == "x=1"
    sent = env.upstream.last("/internal/v1/kbs").headers
    assert sent["Accept-Encoding"] == "gzip" and sent["X-Tenant-ID"] == "acme"
    head = await env.client.head("/v1/kbs", headers=env.server())
    assert head.status_code == 200 and head.content == b""
    after_head = await env.client.get("/v1/kbs", headers=env.server())
    assert after_head.status_code == 200
    big = await env.client.post("/v1/kbs/k/docs", content=b"y" * 300_000, headers=env.server())
    assert big.status_code == 200 and len(big.json()["body"]) == 300_000
