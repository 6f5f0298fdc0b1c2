"""A small real HTTP server standing in for the fleet's upstreams in the gateway's unit tests.

It speaks the chat contract for conversations and message turns (JSON ``TurnResult`` or SSE packets),
echoes every other request (method, path, query, headers, body) and records what it received, so tests
assert what the gateway sent upstream.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web
from multidict import CIMultiDict

from switchboard_shared.contracts.chat import TurnUsage
from switchboard_shared.testing.servers import free_port
from switchboard_shared.tokens import estimate_tokens


@dataclass
class Received:
    method: str
    path: str
    query: str
    headers: CIMultiDict[str]
    body: bytes


def _message(
    conversation_id: str, role: str, text: str, citations: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "id": uuid.uuid4().hex,
        "conversation_id": conversation_id,
        "role": role,
        "text": text,
        "created_at": datetime.now(UTC).isoformat(),
        "citations": citations or [],
        "provider": "extractive",
        "no_answer": False,
        "operator_id": None,
    }


CITATION = {
    "index": 1,
    "chunk_id": "c1",
    "document_id": "d1",
    "title": "Refund policy",
    "url": "https://docs.example/refunds",
    "snippet": "Refunds within 30 days.",
}
REPLY_TOKENS = ["Refunds ", "are ", "accepted ", "within ", "30 days [1]."]


@dataclass
class FakeUpstream:
    port: int = field(default_factory=free_port)
    received: list[Received] = field(default_factory=list)
    conversations: dict[str, dict[str, Any]] = field(default_factory=dict)
    token_delay: float = 0.0
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)
    runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def last(self, path_prefix: str = "") -> Received:
        return [r for r in self.received if r.path.startswith(path_prefix)][-1]

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/openapi.json", self.openapi)
        app.router.add_post("/internal/v1/conversations", self.create_conversation)
        app.router.add_post("/internal/v1/conversations/{cid}/messages", self.post_message)
        app.router.add_get("/internal/v1/slow", self.slow)
        app.router.add_route("*", "/{tail:.*}", self.echo)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def _record(self, request: web.Request) -> Received:
        received = Received(
            request.method,
            request.path,
            request.query_string,
            CIMultiDict(request.headers),
            await request.read(),
        )
        self.received.append(received)
        return received

    async def echo(self, request: web.Request) -> web.Response:
        received = await self._record(request)
        if "sleep" in request.query:
            await asyncio.sleep(float(request.query["sleep"]))
        status = int(request.query.get("status", "200"))
        body = {
            "method": received.method,
            "path": received.path,
            "query": received.query,
            "headers": dict(received.headers),
            "body": received.body.decode(),
        }
        return web.json_response(body, status=status, headers={"X-Upstream": "yes", "Set-Cookie": "a=b"})

    async def slow(self, request: web.Request) -> web.Response:
        await self._record(request)
        await asyncio.sleep(float(request.query.get("seconds", "5")))
        return web.json_response({"slow": True})

    async def openapi(self, _: web.Request) -> web.Response:
        doc = {
            "openapi": "3.1.0",
            "info": {"title": "fake", "version": "1"},
            "paths": {
                "/internal/v1/conversations": {
                    "post": {
                        "operationId": "create_conversation",
                        "parameters": [
                            {
                                "name": "X-Tenant-ID",
                                "in": "header",
                                "required": True,
                                "schema": {"type": "string"},
                            },
                            {"name": "limit", "in": "query", "schema": {"type": "integer"}},
                        ],
                        "requestBody": {
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/CreateConversation"}
                                }
                            }
                        },
                        "responses": {"200": {"description": "ok"}},
                    }
                },
                "/internal/v1/kbs": {
                    "get": {"operationId": "list_kbs", "responses": {"200": {"description": "ok"}}}
                },
                "/healthz": {"get": {"operationId": "healthz", "responses": {"200": {"description": "ok"}}}},
            },
            "components": {
                "schemas": {
                    "CreateConversation": {
                        "type": "object",
                        "properties": {"end_user_id": {"type": "string"}},
                    },
                    "ErrorResponse": {"type": "object", "title": "fake-variant"},
                }
            },
        }
        return web.json_response(doc)

    async def create_conversation(self, request: web.Request) -> web.Response:
        received = await self._record(request)
        data = orjson.loads(received.body)
        tenant = request.headers["X-Tenant-ID"]
        channel = data.get("channel", "api")
        key = data.get("external_key")
        if data.get("resume") and key is not None:
            # Chat's ``resume``: the newest conversation kept for the key, opened on first use.
            kept = [
                c
                for c in self.conversations.values()
                if (c["tenant_id"], c["channel"], c["external_key"]) == (tenant, channel, key)
            ]
            if kept:
                return web.json_response(kept[-1], status=200)
        now = datetime.now(UTC).isoformat()
        conversation = {
            "id": uuid.uuid4().hex,
            "tenant_id": tenant,
            "channel": channel,
            "end_user_id": data["end_user_id"],
            "verified": data.get("verified", False),
            "owner": "bot",
            "status": "open",
            "created_at": now,
            "updated_at": now,
            "external_key": key,
            "profile": None,
        }
        self.conversations[conversation["id"]] = conversation
        return web.json_response(conversation, status=201)

    async def post_message(self, request: web.Request) -> web.StreamResponse:
        received = await self._record(request)
        cid = request.match_info["cid"]
        conversation = self.conversations.get(cid)
        if conversation is None or conversation["tenant_id"] != request.headers.get("X-Tenant-ID"):
            return web.json_response(
                {"error": {"code": "not_found", "message": "no such conversation"}}, status=404
            )
        sent = orjson.loads(received.body)
        text = sent["text"]
        reply = _message(cid, "assistant", "".join(REPLY_TOKENS), [CITATION])
        # Chat's usage of the turn: the message, the earlier turns sent with it, the answer.
        earlier = sum(estimate_tokens(turn["text"]) for turn in sent.get("history", []))
        result = {
            "conversation_id": cid,
            "user_message": _message(cid, "user", text),
            "reply": reply,
            "owner": "bot",
            "handoff": None,
            "latency": {"retrieval_ms": 1.0, "generation_ms": 2.0, "total_ms": 3.0},
            "sources": ["d1"],
            "usage": TurnUsage.of(text, reply["text"], earlier).model_dump(),
        }
        if "text/event-stream" not in request.headers.get("Accept", ""):
            return web.json_response(result)
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}  # as chat sends
        )
        await response.prepare(request)
        try:
            await response.write(b'event: heartbeat\ndata: {"type":"heartbeat"}\n\n')
            for token in REPLY_TOKENS:
                if self.token_delay:
                    await asyncio.sleep(self.token_delay)
                packet = orjson.dumps({"type": "token", "text": token})
                await response.write(b"event: token\ndata: " + packet + b"\n\n")
            packet = orjson.dumps({"type": "citation", "citation": CITATION})
            await response.write(b"event: citation\ndata: " + packet + b"\n\n")
            packet = orjson.dumps({"type": "done", "result": result})
            await response.write(b"event: done\ndata: " + packet + b"\n\n")
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            self.disconnected.set()
            raise
        return response
