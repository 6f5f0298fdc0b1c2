"""Revision 0004: conversations the gateway opened for an OpenAI client's thread get the thread as their
key, so the thread continues once chat alone keeps it (SQLite and PostgreSQL)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from switchboard_shared.db import create_engine, migrate

ROW = (
    "INSERT INTO chat_conversations (id, tenant_id, channel, end_user_id, verified, external_key, status, "
    "owner, last_seq, unsupported_streak, metadata, created_at, updated_at, opened_by) VALUES (:id, 't1', "
    ":channel, 'u', false, :key, 'open', 'bot', 0, 0, :meta, '2026-12-01 10:00:00+00', "
    "'2026-12-01 10:00:00+00', :opened_by)"
)


@pytest.mark.asyncio
async def test_thread_conversations_get_their_key(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await migrate(engine, "switchboard_chat", "0003_suggestion_outbox")
        rows = [
            ("thread", "api", None, {"source": "openai-compatible", "thread": "user:api:bob"}, "api"),
            ("plain", "api", None, {"source": "openai-compatible"}, "api"),
            ("keyed", "api", "own-key", {"thread": "thread:x"}, "api"),
            ("messenger", "telegram", "bot:1", {"thread": "thread:y"}, "inbound"),
            ("long", "api", None, {"thread": "thread:" + "x" * 300}, "api"),
        ]
        async with engine.begin() as conn:
            for conversation_id, channel, key, meta, opened_by in rows:
                await conn.execute(
                    text(ROW),
                    {
                        "id": conversation_id,
                        "channel": channel,
                        "key": key,
                        "meta": json.dumps(meta),
                        "opened_by": opened_by,
                    },
                )
        await migrate(engine, "switchboard_chat")
        async with engine.connect() as conn:
            keys = dict((await conn.execute(text("SELECT id, external_key FROM chat_conversations"))).all())
        assert keys == {
            "thread": "user:api:bob",
            "plain": None,
            "keyed": "own-key",
            "messenger": "bot:1",
            "long": None,
        }
    finally:
        await engine.dispose()
