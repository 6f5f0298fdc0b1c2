"""The packets of one running turn: the turn's task puts them, the response takes them, either as the final
``TurnResult`` or as server-sent events with a heartbeat while nothing else is sent."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from switchboard_shared.contracts.chat import (
    DonePacket,
    ErrorPacket,
    HeartbeatPacket,
    TurnPacket,
    TurnResult,
    encode_sse,
)
from switchboard_shared.errors import AppError, ErrorCode


class TurnHandle:
    """The packets of one running turn; the turn runs in its own task, so a client that goes away does not
    cut a turn in half (its answer is stored and the lock released either way)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[TurnPacket | None] = asyncio.Queue()

    def put(self, packet: TurnPacket) -> None:
        self.queue.put_nowait(packet)

    def close(self) -> None:
        self.queue.put_nowait(None)

    async def packets(self) -> AsyncIterator[TurnPacket]:
        while True:
            packet = await self.queue.get()
            if packet is None:
                return
            yield packet

    async def result(self) -> TurnResult:
        error: ErrorPacket | None = None
        async for packet in self.packets():
            if isinstance(packet, DonePacket):
                return packet.result
            if isinstance(packet, ErrorPacket) and packet.code == "internal_error":
                error = packet
        raise AppError(
            ErrorCode.SERVICE_UNAVAILABLE,
            error.message if error else "The turn did not complete; try again.",
            headers={"Retry-After": "2"},
        )


def wants_stream(accept: str | None) -> bool:
    return accept is not None and "text/event-stream" in accept


async def sse_body(handle: TurnHandle, heartbeat: float) -> AsyncIterator[bytes]:
    """The turn's packets as server-sent events, a heartbeat after each ``heartbeat`` seconds of silence."""
    packets = handle.packets()
    pending: asyncio.Task[TurnPacket] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(packets.__anext__())
            done, _ = await asyncio.wait({pending}, timeout=heartbeat)
            if not done:
                yield encode_sse(HeartbeatPacket())
                continue
            try:
                packet = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            yield encode_sse(packet)
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await pending
