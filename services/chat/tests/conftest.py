"""Fixtures of the chat tests: a local stand-in for retrieval, integrations and analytics that speaks their
contracts and records what it receives, and the chat app served by uvicorn on a free port."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest_asyncio
import uvicorn
from aiohttp import web

from switchboard_chat.main import create_app
from switchboard_chat.settings import ChatSettings
from switchboard_shared.contracts.analytics import EventBatch
from switchboard_shared.contracts.integrations import (
    CreateTicket,
    CustomerLookup,
    OrderLookup,
    RelayCustomerMessage,
    StartHandoff,
)
from switchboard_shared.contracts.retrieval import SearchRequest
from switchboard_shared.testing.servers import free_port, serve_app

INTERNAL_TOKEN = "chat-test-internal-token"

TENANT = "t-acme"

KB = [
    {
        "title": "Custom domains",
        "url": "https://docs.example.com/custom-domains",
        "text": "You can serve your documentation from your own domain. "
        "To add a custom domain, open the project's Admin page and choose Domains. "
        "Then create a CNAME record that points your domain to readthedocs.io. "
        "SSL certificates for custom domains are issued automatically within an hour.",
    },
    {
        "title": "Build limits",
        "url": "https://docs.example.com/builds",
        "text": "Every build has a time limit of 15 minutes and a memory limit of 7 GB. "
        "Builds that exceed the limits are cancelled. "
        "Business plans can raise the build time limit to 60 minutes.",
    },
    {
        "title": "Возврат товара",
        "url": "https://docs.example.com/ru/returns",
        "text": "Вернуть товар можно в течение 30 дней после покупки. "
        "Для возврата оформите заявку в личном кабинете и приложите чек. "
        "Деньги возвращаются на карту в течение 10 рабочих дней.",
    },
]
CUSTOMERS = {
    "cus_1": {
        "id": "cus_1",
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "balance": 12.5,
        "currency": "EUR",
    }
}
ORDERS = {
    "A-1001": {
        "number": "A-1001",
        "status": "shipped",
        "customer_id": "cus_1",
        "tracking_number": "TRK123",
        "tracking_url": "https://track.example.com/TRK123",
    },
    "A-2002": {"number": "A-2002", "status": "processing", "customer_id": "cus_other"},
}


def _words(text: str) -> set[str]:
    return {w[:5] for w in re.findall(r"\w+", text.lower()) if len(w) > 2}


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


@dataclass
class FakeFleet:
    """Retrieval, integrations and analytics as the chat service sees them, on one local port."""

    port: int = field(default_factory=free_port)
    received: list[tuple[str, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    retrieval_down: bool = False
    integrations_down: bool = False
    runner: web.AppRunner | None = None
    # Curated answers retrieval would match: the exact query -> the match it returns when asked for one.
    curated: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Suggested curated answers retrieval accepted (it answers 503 to them while retrieval_down).
    suggestions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def calls(self, path: str) -> list[dict[str, Any]]:
        return [body for p, body, _ in self.received if p == path]

    def headers_of(self, path: str) -> list[dict[str, str]]:
        return [headers for p, _, headers in self.received if p == path]

    def events_of(self, kind: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event["type"] == kind]

    async def _record(self, request: web.Request) -> dict[str, Any]:
        body: dict[str, Any] = await request.json() if request.can_read_body else {}
        self.received.append((request.path, body, dict(request.headers)))
        assert request.headers.get("X-Internal-Token") == INTERNAL_TOKEN
        return body

    async def search(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        if self.retrieval_down:
            return _error(503, "service_unavailable", "down")
        assert request.headers.get("X-Tenant-ID") == TENANT
        query = SearchRequest.model_validate(body)
        if query.curated and query.query in self.curated:
            return web.json_response({"hits": [], "took_ms": 1.0, "curated": self.curated[query.query]})
        probe = re.search(r"probe (\d+)", query.query)
        if probe is not None:  # one passage per probe number: tells which question an answer belongs to
            n = probe.group(1)
            text = f"The probe {n} answer is ready for you."
            hit = {
                "chunk_id": f"p{n}",
                "document_id": f"probe{n}",
                "kb_id": "kb1",
                "source_id": "s1",
                "title": f"Probe {n}",
                "text": text,
                "snippet": text,
                "score": 1.0,
            }
            return web.json_response({"hits": [hit], "took_ms": 1.0})
        words = _words(query.query)
        hits = []
        for i, doc in enumerate(KB):
            score = len(words & _words(doc["text"] + " " + doc["title"])) / max(1, len(words))
            if score > 0:
                hits.append(
                    {
                        "chunk_id": f"c{i}",
                        "document_id": f"d{i}",
                        "kb_id": "kb1",
                        "source_id": "s1",
                        "title": doc["title"],
                        "url": doc["url"],
                        "text": doc["text"],
                        "snippet": doc["text"][:120],
                        "score": score,
                    }
                )
        hits.sort(key=lambda h: -float(h["score"]))
        return web.json_response({"hits": hits[: query.top_k], "took_ms": 1.0})

    async def customers(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        if self.integrations_down:
            return _error(503, "service_unavailable", "down")
        lookup = CustomerLookup.model_validate(body)
        for customer in CUSTOMERS.values():
            if customer.get(lookup.by) == lookup.value:
                return web.json_response(customer)
        return _error(404, "not_found", "No such customer.")

    async def orders(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        lookup = OrderLookup.model_validate(body)
        order = ORDERS.get(lookup.order_number)
        if order is None or (lookup.customer_id and order["customer_id"] != lookup.customer_id):
            return _error(404, "not_found", "No such order.")
        return web.json_response(order)

    async def tickets(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        ticket = CreateTicket.model_validate(body)
        return web.json_response(self._ticket(ticket.conversation_id), status=201)

    def _ticket(self, conversation_id: str | None) -> dict[str, Any]:
        return {
            "id": f"tk_{uuid.uuid4().hex[:8]}",
            "tenant_id": TENANT,
            "system": "zendesk",
            "external_id": "4242",
            "status": "open",
            "conversation_id": conversation_id,
            "created_at": datetime.now(UTC).isoformat(),
        }

    async def handoffs(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        if self.integrations_down:
            return _error(503, "service_unavailable", "down")
        start = StartHandoff.model_validate(body)
        now = datetime.now(UTC).isoformat()
        return web.json_response(
            {
                "id": f"h_{uuid.uuid4().hex[:8]}",
                "tenant_id": TENANT,
                "conversation_id": start.conversation_id,
                "channel": start.channel.value,
                "end_user_id": start.end_user_id,
                "status": "waiting",
                "reason": start.reason,
                "ticket": self._ticket(start.conversation_id) if start.create_ticket else None,
                "created_at": now,
                "updated_at": now,
            },
            status=201,
        )

    async def relay(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        RelayCustomerMessage.model_validate(body)
        return web.json_response({"delivered": True}, status=202)

    async def suggest(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        if self.retrieval_down:
            return _error(503, "service_unavailable", "down")
        assert request.headers.get("X-Tenant-ID") == TENANT
        key = (body["conversation_id"], body["question"])
        if all((s["conversation_id"], s["question"]) != key for s in self.suggestions):
            self.suggestions.append(body)  # once per conversation and question, as retrieval records them
        return web.json_response({"id": f"sg-{len(self.suggestions)}", **body}, status=201)

    async def ingest(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        batch = EventBatch.model_validate(body)
        self.events.extend(batch.events)
        return web.json_response(
            {
                "accepted": len(batch.events),
                "duplicates": 0,
                "rejected": [],
                "received_at": datetime.now(UTC).isoformat(),
            }
        )

    async def start(self) -> FakeFleet:
        app = web.Application()
        app.router.add_post("/internal/v1/search", self.search)
        app.router.add_post("/internal/v1/crm/customers/lookup", self.customers)
        app.router.add_post("/internal/v1/crm/orders/lookup", self.orders)
        app.router.add_post("/internal/v1/tickets", self.tickets)
        app.router.add_post("/internal/v1/handoffs", self.handoffs)
        app.router.add_post("/internal/v1/handoffs/relay", self.relay)
        app.router.add_post("/internal/v1/events", self.ingest)
        app.router.add_post("/internal/v1/curated/suggestions", self.suggest)
        self.runner = await serve_app(app, self.port)
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


def chat_env(fleet_url: str, **extra: str) -> dict[str, str]:
    return {
        "SWITCHBOARD_RETRIEVAL_URL": fleet_url,
        "SWITCHBOARD_INTEGRATIONS_URL": fleet_url,
        "SWITCHBOARD_ANALYTICS_URL": fleet_url,
        "SWITCHBOARD_ENVIRONMENT": "test",
        "SWITCHBOARD_INTERNAL_TOKEN": INTERNAL_TOKEN,
        "SWITCHBOARD_LOG_JSON": "false",
        **extra,
    }


@dataclass
class ChatServer:
    url: str
    server: uvicorn.Server
    task: asyncio.Task[None]
    settings: ChatSettings

    def client(self, **headers: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.url,
            headers={"X-Internal-Token": INTERNAL_TOKEN, "X-Tenant-ID": TENANT, **headers},
            timeout=300,
        )

    async def stop(self) -> None:
        self.server.should_exit = True
        await self.task


async def serve_chat(settings: ChatSettings) -> ChatServer:
    port = free_port()
    settings = settings.model_copy(update={"port": port})
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(400):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.025)
    return ChatServer(f"http://127.0.0.1:{port}", server, task, settings)


def make_settings(database_url: str, fleet: FakeFleet, **overrides: Any) -> ChatSettings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "retrieval_url": fleet.url,
        "integrations_url": fleet.url,
        "analytics_url": fleet.url,
        "environment": "test",
        "internal_token": INTERNAL_TOKEN,
        "http_retries": 0,
        # Tenant provider configs in these tests point at local stand-ins and llama.cpp servers.
        "url_allowlist": ["127.0.0.0/8", "localhost"],
        **overrides,
    }
    return ChatSettings(**values)


@pytest_asyncio.fixture
async def fleet() -> AsyncIterator[FakeFleet]:
    fake = await FakeFleet().start()
    yield fake
    await fake.stop()


@pytest_asyncio.fixture
async def chat(database_url: str, fleet: FakeFleet) -> AsyncIterator[ChatServer]:
    server = await serve_chat(make_settings(database_url, fleet))
    yield server
    await server.stop()


async def new_conversation(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post("/internal/v1/conversations", json={"end_user_id": "u1", **body})
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


@pytest_asyncio.fixture
async def chat_factory(fleet: FakeFleet) -> AsyncIterator[Any]:
    """Start more chat servers (other settings) in the test; all are stopped at the end."""
    servers: list[ChatServer] = []

    async def start(database_url: str, **overrides: Any) -> ChatServer:
        server = await serve_chat(make_settings(database_url, fleet, **overrides))
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


@pytest_asyncio.fixture
async def conversation_factory() -> Any:
    return new_conversation


def _sse_line(data: dict[str, Any], event: str | None = None) -> bytes:
    import json

    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()


@dataclass
class FakeLLM:
    """OpenAI chat completions, Anthropic messages and Gemini streamGenerateContent, speaking each API's
    documented streaming wire format. ``script`` is what to answer next: {"text": ...} or
    {"tool": name, "args": {...}}; ``mode`` is ok, fail (HTTP 500), slow (first byte after ``delay``),
    stall (OpenAI only: two content chunks, then silence for ``delay`` before the rest) or echo (OpenAI only:
    answers with the last message it was sent, as small base models do)."""

    port: int = field(default_factory=free_port)
    received: list[tuple[str, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    script: list[dict[str, Any]] = field(default_factory=list)
    mode: str = "ok"
    delay: float = 3.0
    token_gap: float = 0.0
    runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def calls(self, fragment: str) -> list[tuple[dict[str, Any], dict[str, str]]]:
        return [(body, headers) for path, body, headers in self.received if fragment in path]

    def _next(self) -> dict[str, Any]:
        return self.script.pop(0) if self.script else {"text": "From the model: see passage [1]."}

    async def _begin(self, request: web.Request) -> tuple[dict[str, Any], web.StreamResponse | None]:
        body: dict[str, Any] = await request.json()
        self.received.append((request.path_qs, body, {k.lower(): v for k, v in request.headers.items()}))
        if self.mode == "fail":
            return body, web.json_response({"error": {"message": "boom", "type": "server_error"}}, status=500)
        if self.mode == "slow":
            await asyncio.sleep(self.delay)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        return body, response

    async def _pieces(self, text: str) -> list[str]:
        words = text.split(" ")
        return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]

    async def openai(self, request: web.Request) -> web.StreamResponse:
        body, response = await self._begin(request)
        if isinstance(response, web.Response) or response is None:
            assert response is not None
            return response
        step = {"text": str(body["messages"][-1]["content"])} if self.mode == "echo" else self._next()
        base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "fake"}
        if "tool" in step:
            import json

            first = {
                "index": 0,
                "id": "call_1",
                "type": "function",
                "function": {"name": step["tool"], "arguments": ""},
            }
            await response.write(
                _sse_line(
                    {
                        **base,
                        "choices": [
                            {
                                "index": 0,
                                "delta": {"role": "assistant", "content": None, "tool_calls": [first]},
                                "finish_reason": None,
                            }
                        ],
                    }
                )
            )
            args = {"index": 0, "function": {"arguments": json.dumps(step["args"])}}
            await response.write(
                _sse_line(
                    {
                        **base,
                        "choices": [{"index": 0, "delta": {"tool_calls": [args]}, "finish_reason": None}],
                    }
                )
            )
            await response.write(
                _sse_line({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
            )
        else:
            for number, piece in enumerate(await self._pieces(step["text"])):
                if self.mode == "stall" and number == 2:
                    await asyncio.sleep(self.delay)
                await response.write(
                    _sse_line(
                        {
                            **base,
                            "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
                        }
                    )
                )
                if self.token_gap:
                    await asyncio.sleep(self.token_gap)
            await response.write(
                _sse_line({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            )
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def anthropic(self, request: web.Request) -> web.StreamResponse:
        _, response = await self._begin(request)
        if isinstance(response, web.Response) or response is None:
            assert response is not None
            return response
        import json

        step = self._next()
        message = {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": "claude-test",
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 1},
        }
        await response.write(_sse_line({"type": "message_start", "message": message}, "message_start"))
        if "tool" in step:
            block = {"type": "tool_use", "id": "toolu_1", "name": step["tool"], "input": {}}
            await response.write(
                _sse_line(
                    {"type": "content_block_start", "index": 0, "content_block": block}, "content_block_start"
                )
            )
            delta = {"type": "input_json_delta", "partial_json": json.dumps(step["args"])}
            await response.write(
                _sse_line({"type": "content_block_delta", "index": 0, "delta": delta}, "content_block_delta")
            )
            stop = "tool_use"
        else:
            await response.write(
                _sse_line(
                    {
                        "type": "content_block_start",
                        "index": 0,
                        "content_block": {"type": "text", "text": ""},
                    },
                    "content_block_start",
                )
            )
            for piece in await self._pieces(step["text"]):
                delta = {"type": "text_delta", "text": piece}
                await response.write(
                    _sse_line(
                        {"type": "content_block_delta", "index": 0, "delta": delta}, "content_block_delta"
                    )
                )
            stop = "end_turn"
        await response.write(_sse_line({"type": "content_block_stop", "index": 0}, "content_block_stop"))
        await response.write(
            _sse_line(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": 5},
                },
                "message_delta",
            )
        )
        await response.write(_sse_line({"type": "message_stop"}, "message_stop"))
        await response.write_eof()
        return response

    async def google(self, request: web.Request) -> web.StreamResponse:
        _, response = await self._begin(request)
        if isinstance(response, web.Response) or response is None:
            assert response is not None
            return response
        step = self._next()
        if "tool" in step:
            parts = [{"functionCall": {"name": step["tool"], "args": step["args"]}}]
            chunks = [
                {
                    "candidates": [
                        {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}
                    ]
                }
            ]
        else:
            pieces = await self._pieces(step["text"])
            chunks = [
                {"candidates": [{"content": {"role": "model", "parts": [{"text": p}]}, "index": 0}]}
                for p in pieces
            ]
            chunks[-1]["candidates"][0]["finishReason"] = "STOP"
        chunks[-1]["usageMetadata"] = {
            "promptTokenCount": 10,
            "candidatesTokenCount": 5,
            "totalTokenCount": 15,
        }
        if "alt=sse" in request.query_string:
            for chunk in chunks:
                await response.write(_sse_line(chunk))
        else:  # without alt=sse the REST API streams one JSON array, element by element
            import json

            for i, chunk in enumerate(chunks):
                await response.write(("[" if i == 0 else ",\r\n").encode() + json.dumps(chunk).encode())
            await response.write(b"]")
        await response.write_eof()
        return response

    async def start(self) -> FakeLLM:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.openai)
        app.router.add_post("/v1/messages", self.anthropic)
        app.router.add_post("/v1beta/models/{model}", self.google)
        self.runner = await serve_app(app, self.port)
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest_asyncio.fixture
async def llm() -> AsyncIterator[FakeLLM]:
    fake = await FakeLLM().start()
    yield fake
    await fake.stop()
