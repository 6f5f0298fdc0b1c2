"""A message's text is stored and passed on without control characters (NUL and the like), whoever
sent it: the databases refuse NUL in text, and analytics events must not be lost for one."""

from __future__ import annotations

from typing import Any

import pytest

SERVER = {"X-Key-Scope": "server"}


@pytest.fixture
def database_url(tmp_path: Any) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/chat.db"


@pytest.mark.asyncio
async def test_message_text_is_stored_without_control_characters(chat: Any) -> None:
    async with chat.client(**SERVER) as client:
        cid = (await client.post("/internal/v1/conversations", json={"end_user_id": "u3"})).json()["id"]
        turn = await client.post(
            f"/internal/v1/conversations/{cid}/messages", json={"text": "custom\x00 domain?\x07\nthanks"}
        )
        assert turn.status_code == 200
        assert turn.json()["user_message"]["text"] == "custom domain?\nthanks"
        only_controls = await client.post(
            f"/internal/v1/conversations/{cid}/messages", json={"text": "\x00\x01"}
        )
        assert only_controls.status_code == 422
