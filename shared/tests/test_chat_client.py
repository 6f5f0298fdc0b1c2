"""``ChatClient``: the typed client of chat's internal API, against a small stand-in speaking chat's wire
format (JSON answers, SSE turns encoded with the shared codec, errors in the one error shape)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import pytest_asyncio
from aiohttp import web

from switchboard_shared.contracts.chat import (
    ChatClient,
    DonePacket,
    Message,
    Owner,
    PostMessage,
    Role,
    TokenPacket,
    TurnResult,
    encode_sse,
)
from switchboard_shared.contracts.routes import TENANT_HEADER
from switchboard_shared.errors import AppError, ErrorCode
from switchboard_shared.http_client import ClientConfig, Downstream

NOW = datetime(2026, 1, 1, tzinfo=UTC)
USER = Message(id="m1", conversation_id="c1", role=Role.USER, text="Hi", created_at=NOW)
RESULT = TurnResult(conversation_id="c1", user_message=USER, reply=None, owner=Owner.BOT)


@pytest_asyncio.fixture
async def chat() -> AsyncIterator[ChatClient]:
    async def messages(request: web.Request) -> web.StreamResponse:
        if request.match_info["cid"] == "gone":
            return web.json_response({"error": {"code": "not_found", "message": "no such one"}}, status=404)
        if request.headers.get(TENANT_HEADER) != "acme":
            return web.json_response({"unexpected": True})
        if "text/event-stream" not in request.headers.get("Accept", ""):
            return web.json_response(RESULT.model_dump(mode="json"))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for packet in (TokenPacket(text="Hel"), TokenPacket(text="lo"), DonePacket(result=RESULT)):
            await response.write(encode_sse(packet))
        return response

    app = web.Application()
    app.router.add_post("/internal/v1/conversations/{cid}/messages", messages)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    downstream = Downstream("chat", f"http://127.0.0.1:{port}", ClientConfig(retries=0))
    try:
        yield ChatClient(downstream)
    finally:
        await downstream.close()
        await runner.cleanup()


@pytest.mark.asyncio
async def test_a_turn_answered_whole_and_streamed(chat: ChatClient) -> None:
    headers = {TENANT_HEADER: "acme"}
    assert await chat.post_message("c1", PostMessage(text="Hi"), headers=headers) == RESULT
    async with chat.stream_turn("c1", PostMessage(text="Hi"), headers=headers) as packets:
        received = [packet async for packet in packets]
    assert received == [TokenPacket(text="Hel"), TokenPacket(text="lo"), DonePacket(result=RESULT)]


@pytest.mark.asyncio
async def test_a_refused_turn_raises_chats_error_before_any_packet(chat: ChatClient) -> None:
    with pytest.raises(AppError) as refused:
        async with chat.stream_turn("gone", PostMessage(text="Hi"), headers={TENANT_HEADER: "acme"}):
            pass
    assert (refused.value.status, refused.value.code) == (404, ErrorCode.NOT_FOUND)


@pytest.mark.asyncio
async def test_an_unexpected_shape_is_an_upstream_error(chat: ChatClient) -> None:
    with pytest.raises(AppError) as wrong:
        await chat.post_message("c1", PostMessage(text="Hi"), headers={TENANT_HEADER: "other"})
    assert wrong.value.code == ErrorCode.UPSTREAM_ERROR
