"""What a customer message costs chat's database: each statement costs CPU on every turn, so a turn reads
only what it cannot have from the recent-window cache, and a messenger message (Telegram, WhatsApp: through
``/internal/v1/inbound``) finds its conversation without reading what the turn reads anyway."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine


@contextmanager
def selects_from(table: str) -> Iterator[list[str]]:
    """The SELECT statements on ``table`` that run inside the block (chat runs in this process)."""
    found: list[str] = []

    def record(*args: Any) -> None:
        statement = str(args[2])
        if statement.lstrip().startswith("SELECT") and f"FROM {table}" in statement:
            found.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield found
    finally:
        event.remove(Engine, "before_cursor_execute", record)


@pytest.mark.asyncio
async def test_a_messenger_message_reads_the_customer_profile_once(chat: Any) -> None:
    """The turn reads the end user's profile; finding the conversation that goes on must not read it again."""
    inbound = {
        "channel": "telegram",
        "end_user_id": "telegram:42",
        "external_key": "bot:42",
        "text": "How do I add a custom domain?",
    }
    async with chat.client() as client:
        first = await client.post("/internal/v1/inbound", json={**inbound, "idempotency_key": "tg:1"})
        assert first.status_code == 200, first.text
        with selects_from("chat_end_users") as profile_reads:
            second = await client.post("/internal/v1/inbound", json={**inbound, "idempotency_key": "tg:2"})
    assert second.status_code == 200, second.text
    assert second.json()["conversation_id"] == first.json()["conversation_id"]
    assert len(profile_reads) == 1, profile_reads


@pytest.mark.asyncio
async def test_a_turn_reads_no_messages_when_the_window_is_cached(
    chat: Any, conversation_factory: Any
) -> None:
    """The window ends with the conversation's last message, and carries the action it may have asked the
    customer to confirm (test_openai_tool_round_trip confirms one through it): the last message is not
    read again."""
    async with chat.client() as client:
        cid = (await conversation_factory(client))["id"]
        first = await client.post(
            f"/internal/v1/conversations/{cid}/messages", json={"text": "Build memory?"}
        )
        assert first.status_code == 200, first.text
        with selects_from("chat_messages") as message_reads:
            second = await client.post(
                f"/internal/v1/conversations/{cid}/messages", json={"text": "And how long may a build run?"}
            )
    assert second.status_code == 200, second.text
    assert message_reads == []
