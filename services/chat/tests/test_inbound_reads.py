"""What a messenger message costs chat's database: every Telegram or WhatsApp message comes through
``/internal/v1/inbound``, which finds the chat's conversation before the turn."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine


@pytest.mark.asyncio
async def test_a_messenger_message_reads_the_customer_profile_once(chat: Any) -> None:
    """The turn reads the end user's profile; finding the conversation that goes on must not read it again."""
    inbound = {
        "channel": "telegram",
        "end_user_id": "telegram:42",
        "external_key": "bot:42",
        "text": "How do I add a custom domain?",
    }
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(str(args[2]))

    async with chat.client() as client:
        first = await client.post("/internal/v1/inbound", json={**inbound, "idempotency_key": "tg:1"})
        assert first.status_code == 200, first.text
        event.listen(Engine, "before_cursor_execute", record)
        try:
            second = await client.post("/internal/v1/inbound", json={**inbound, "idempotency_key": "tg:2"})
        finally:
            event.remove(Engine, "before_cursor_execute", record)
    assert second.status_code == 200, second.text
    assert second.json()["conversation_id"] == first.json()["conversation_id"]
    profile_reads = [s for s in statements if s.lstrip().startswith("SELECT") and "FROM chat_end_users" in s]
    assert len(profile_reads) == 1, profile_reads
