"""Test helpers: the integrations app served over real HTTP in the test's loop, and small local HTTP servers
standing in for chat, CRMs, Zendesk, Jira, api.telegram.org and the Graph API that record every request."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn
from aiohttp import web

from switchboard_integrations.main import create_app
from switchboard_integrations.settings import IntegrationsSettings
from switchboard_shared.contracts.chat import (
    Citation,
    InboundMessage,
    Message,
    OperatorMessage,
    Owner,
    OwnerChange,
    Role,
    StatusChange,
    TurnResult,
)
from switchboard_shared.registry import DEMO_CRM_MODULE
from switchboard_shared.testing.processes import ServiceProcess
from switchboard_shared.testing.servers import free_port, serve_app

INTERNAL_TOKEN = "integrations-test-internal-token"
INTERNAL = {"X-Internal-Token": INTERNAL_TOKEN}


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Handler = Callable[[Recorded], Awaitable[web.StreamResponse]]


@dataclass
class FakeServer:
    """A real HTTP server on a free port; ``routes`` maps "METHOD /path" to a handler (or a prefix with *)."""

    routes: dict[str, Handler] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    runner: web.AppRunner | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def route(self, key: str) -> Callable[[Handler], Handler]:
        def decorator(handler: Handler) -> Handler:
            self.routes[key] = handler
            return handler

        return decorator

    def calls(self, method: str, path_prefix: str = "") -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path.startswith(path_prefix)]

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        recorded = Recorded(
            request.method, request.path, dict(request.query), dict(request.headers), await request.read()
        )
        self.requests.append(recorded)
        key = f"{request.method} {request.path}"
        handler = self.routes.get(key)
        if handler is None:
            for pattern, candidate in self.routes.items():
                if pattern.endswith("*") and key.startswith(pattern[:-1]):
                    handler = candidate
                    break
        if handler is None:
            return web.json_response({"error": f"no route for {key}"}, status=404)
        return await handler(recorded)

    async def start(self) -> FakeServer:
        """Listen on a free port, or on the port it had before (``stop`` then ``start``: a platform outage)."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self.port = self.port or free_port()
        self.runner = await serve_app(app, self.port)
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[Callable[[], Awaitable[FakeServer]]]:
    servers: list[FakeServer] = []

    async def make() -> FakeServer:
        server = await FakeServer().start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        await server.stop()


class FakeChat:
    """Stands in for chat's internal API; every body must parse as its ``contracts.chat`` model."""

    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.reply_text: str | None = "Your order A-1001 has shipped."
        self.reply_citations: list[Citation] = []
        self.owner_changes: list[OwnerChange] = []
        self.status_changes: list[StatusChange] = []
        self.operator_messages: list[tuple[str, OperatorMessage]] = []
        self.inbound: list[InboundMessage] = []
        self.fail_inbound = False
        server.routes["POST /internal/v1/inbound"] = self._inbound
        server.routes["POST /internal/v1/conversations/*"] = self._conversation_post
        server.routes["PUT /internal/v1/conversations/*"] = self._conversation_put

    def _check(self, request: Recorded) -> None:
        assert request.headers.get("X-Internal-Token") == INTERNAL_TOKEN
        assert request.headers.get("X-Tenant-ID")

    async def _inbound(self, request: Recorded) -> web.StreamResponse:
        self._check(request)
        if self.fail_inbound:
            return web.json_response({"error": {"code": "internal_error", "message": "down"}}, status=500)
        message = InboundMessage.model_validate(request.json())
        self.inbound.append(message)
        now = datetime.now(UTC)
        user = Message(
            id=f"m-{len(self.inbound)}",
            conversation_id="conv-1",
            role=Role.USER,
            text=message.text,
            created_at=now,
        )
        reply = (
            Message(
                id=f"r-{message.idempotency_key}",
                conversation_id="conv-1",
                role=Role.ASSISTANT,
                text=self.reply_text,
                created_at=now,
                citations=self.reply_citations,
            )
            if self.reply_text
            else None
        )
        result = TurnResult(
            conversation_id="conv-1",
            user_message=user,
            reply=reply,
            owner=Owner.BOT if reply else Owner.HUMAN,
        )
        return web.json_response(result.model_dump(mode="json"))

    async def _conversation_post(self, request: Recorded) -> web.StreamResponse:
        self._check(request)
        parts = request.path.split("/")
        assert parts[-1] == "operator-messages", request.path
        message = OperatorMessage.model_validate(request.json())
        known = [m for _, m in self.operator_messages if m.idempotency_key == message.idempotency_key]
        if not known:
            self.operator_messages.append((parts[-2], message))
        stored = Message(
            id=f"op-{message.idempotency_key}",
            conversation_id=parts[-2],
            role=Role.OPERATOR,
            text=message.text,
            created_at=datetime.now(UTC),
            operator_id=message.operator_id,
        )
        return web.json_response(stored.model_dump(mode="json"), status=201)

    async def _conversation_put(self, request: Recorded) -> web.StreamResponse:
        self._check(request)
        if request.path.endswith("/owner"):
            self.owner_changes.append(OwnerChange.model_validate(request.json()))
        elif request.path.endswith("/status"):
            self.status_changes.append(StatusChange.model_validate(request.json()))
        else:
            raise AssertionError(request.path)
        return web.json_response({"ok": True})


@pytest_asyncio.fixture
async def chat(fake: Callable[[], Awaitable[FakeServer]]) -> FakeChat:
    return FakeChat(await fake())


@dataclass
class Service:
    url: str
    client: httpx.AsyncClient
    settings: IntegrationsSettings

    def headers(self, tenant: str = "acme", **extra: str) -> dict[str, str]:
        return {**INTERNAL, "X-Tenant-ID": tenant, **extra}


ServiceFactory = Callable[..., Awaitable[Service]]


@pytest_asyncio.fixture
async def service_factory(tmp_path: Path) -> AsyncIterator[ServiceFactory]:
    """Serve ``create_app(settings)`` with uvicorn in this loop, over real HTTP on a free port."""
    running: list[tuple[uvicorn.Server, asyncio.Task[None], httpx.AsyncClient]] = []

    async def start(**overrides: Any) -> Service:
        values: dict[str, Any] = {
            "environment": "test",
            "internal_token": INTERNAL_TOKEN,
            "data_dir": str(tmp_path),
            "log_json": False,
            "channel_send_backoff": 0.05,
            "http_retries": 2,
            # The stand-ins of Zendesk, Jira and the CRM listen on loopback.
            "url_allowlist": ["127.0.0.1"],
            **overrides,
        }
        settings = IntegrationsSettings(**values)
        port = free_port()
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=port, log_config=None, lifespan="on", ws="none"
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        for _ in range(600):
            if server.started:
                break
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30.0)
        running.append((server, task, client))
        return Service(f"http://127.0.0.1:{port}", client, settings)

    yield start
    for server, task, client in running:
        await client.aclose()
        server.should_exit = True
        await task


@pytest.fixture(scope="session")
def demo_crm() -> Iterator[ServiceProcess]:
    """The demo CRM as a real process (``python -m switchboard_demo_crm``, from demo/crm)."""
    process = ServiceProcess(DEMO_CRM_MODULE, {}, name="demo-crm").start()
    try:
        yield process
    finally:
        process.stop()


def assert_error_shape(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert {"code", "message", "request_id"} <= set(body["error"])
    if code is not None:
        assert body["error"]["code"] == code
    error: dict[str, Any] = body["error"]
    return error
