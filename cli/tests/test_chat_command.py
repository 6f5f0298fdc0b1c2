"""``switchboard chat`` against a local HTTP server speaking the gateway's public conversation API (SSE)."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from typer.testing import CliRunner

from switchboard_cli.main import app
from switchboard_shared.contracts.chat import (
    Citation,
    CitationPacket,
    DonePacket,
    HeartbeatPacket,
    Message,
    Owner,
    Role,
    TokenPacket,
    TurnResult,
    decode_sse,
    encode_sse,
)
from switchboard_shared.testing.servers import free_port, wait_for_port

KEY = "sk_test_cli"
CITATION = Citation(
    index=1, chunk_id="c1", document_id="d1", title="Billing FAQ", url="https://docs.example.com/billing"
)


class FakeGatewayState:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self.owner = Owner.BOT
        self.messages: list[Message] = []
        self.conversations = 0
        self.rate_limit_next = False


def _message(role: Role, text: str, n: int) -> Message:
    return Message(
        id=f"m{n:04d}",
        conversation_id="conv-1",
        role=role,
        text=text,
        created_at=datetime.now(UTC),
        citations=[CITATION] if role is Role.ASSISTANT else [],
    )


def build_app(state: FakeGatewayState) -> Starlette:
    async def endpoint(request: Request) -> Response:
        raw = await request.body()
        body = json.loads(raw) if raw else None
        state.requests.append((request.method, request.url.path, dict(request.headers), body))
        if request.headers.get("authorization") != f"Bearer {KEY}":
            return JSONResponse(
                {"error": {"code": "unauthorized", "message": "Unknown key", "request_id": "r"}}, 401
            )
        path = request.url.path
        if path == "/v1/conversations":
            state.conversations += 1
            state.owner, state.messages = Owner.BOT, []
            return JSONResponse({"id": f"conv-{state.conversations}", "owner": "bot"}, 201)
        if path.endswith("/handoff"):
            state.owner = Owner.HUMAN
            state.messages.append(_message(Role.OPERATOR, "Hello, Maria from billing here.", 500))
            return JSONResponse({"id": "conv-1", "owner": "human"})
        if request.method == "GET":
            after = request.query_params.get("after", "")
            messages = [m.model_dump(mode="json") for m in state.messages if m.id > after]
            return JSONResponse({"id": "conv-1", "owner": state.owner.value, "messages": messages})
        if state.rate_limit_next:
            state.rate_limit_next = False
            error = {"error": {"code": "rate_limited", "message": "Slow down", "request_id": "r"}}
            return JSONResponse(error, 429, headers={"Retry-After": "9"})
        user = _message(Role.USER, body["text"], len(state.messages) + 1)
        reply = _message(Role.ASSISTANT, "Refunds take 5 days [1].", len(state.messages) + 2)
        state.messages += [user, reply]

        async def stream() -> AsyncIterator[bytes]:
            yield encode_sse(HeartbeatPacket())
            for word in ("Refunds ", "take ", "5 ", "days ", "[1]."):
                yield encode_sse(TokenPacket(text=word))
            yield encode_sse(CitationPacket(citation=CITATION))
            result = TurnResult(conversation_id="conv-1", user_message=user, reply=reply, owner=Owner.BOT)
            yield encode_sse(DonePacket(result=result))

        return StreamingResponse(stream(), media_type="text/event-stream")

    return Starlette(
        routes=[
            Route("/v1/conversations", endpoint, methods=["POST"]),
            Route("/v1/conversations/{rest:path}", endpoint, methods=["GET", "POST"]),
        ]
    )


@pytest.fixture
def gateway() -> Iterator[tuple[FakeGatewayState, str]]:
    state = FakeGatewayState()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            build_app(state), host="127.0.0.1", port=port, log_level="warning", lifespan="off", ws="none"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for_port(port)
    yield state, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_parse_sse_reads_typed_packets_and_skips_unknown_ones() -> None:
    lines = [
        "event: token",
        'data: {"type": "token", "text": "Hi"}',
        "",
        "event: shiny_new_packet",
        'data: {"type": "shiny_new_packet"}',
        "",
        "event: heartbeat",
        'data: {"type": "heartbeat"}',
    ]
    packets = list(decode_sse(lines))
    assert [p.type for p in packets] == ["token", "heartbeat"]
    assert packets[0].text == "Hi"


def test_chat_streams_answer_with_citations_then_hands_off(gateway: tuple[FakeGatewayState, str]) -> None:
    state, url = gateway
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["chat", "--gateway", url, "--key", KEY, "--user", "alice", "--provider", "extractive"],
        input="How long do refunds take?\n/human\n\n/quit\n",
    )
    assert result.exit_code == 0, result.output
    assert "assistant: Refunds take 5 days [1]." in result.output
    assert "[1] Billing FAQ — https://docs.example.com/billing" in result.output
    assert "connecting you to a person" in result.output
    assert "support agent: Hello, Maria from billing here." in result.output
    post = next(r for r in state.requests if r[1].endswith("/messages"))
    assert post[2]["accept"] == "text/event-stream"
    assert post[2]["x-end-user-id"] == "alice"
    assert post[3]["text"] == "How long do refunds take?"
    assert post[3]["providers"] == ["extractive"]
    created = next(r for r in state.requests if r[1] == "/v1/conversations")
    assert created[3]["end_user_id"] == "alice"
    assert created[3]["channel"] == "api"


def test_new_starts_another_conversation_and_errors_are_plain(gateway: tuple[FakeGatewayState, str]) -> None:
    state, url = gateway
    state.rate_limit_next = True
    runner = CliRunner()
    result = runner.invoke(app, ["chat", "--gateway", url, "--key", KEY], input="hello\n/new\n/what\n/quit\n")
    assert result.exit_code == 0, result.output
    assert "Too many requests. Wait 9 s and try again." in result.output
    assert "New conversation conv-2." in result.output
    assert "Unknown command." in result.output
    assert state.conversations == 2

    refused = runner.invoke(app, ["chat", "--gateway", url, "--key", "sk_wrong"], input="hi\n/quit\n")
    assert "The gateway refused this key: Unknown key" in refused.output


def test_identity_token_names_the_end_user(gateway: tuple[FakeGatewayState, str]) -> None:
    state, url = gateway
    payload = base64.urlsafe_b64encode(b'{"sub": "cust_42", "exp": 9999999999}').rstrip(b"=").decode()
    token = f"v1.{payload}.signature"
    result = CliRunner().invoke(
        app, ["chat", "--gateway", url, "--key", KEY, "--user-token", token], input="hi\n/quit\n"
    )
    assert result.exit_code == 0, result.output
    created = next(r for r in state.requests if r[1] == "/v1/conversations")
    assert created[3]["end_user_id"] == "cust_42"
    assert created[2]["x-end-user-token"] == token
    assert "x-end-user-id" not in created[2]


def test_chat_needs_a_key(gateway: tuple[FakeGatewayState, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SWITCHBOARD_API_KEY", raising=False)
    result = CliRunner().invoke(app, ["chat", "--gateway", gateway[1]])
    assert result.exit_code == 2
    assert "An API key is needed" in result.output
