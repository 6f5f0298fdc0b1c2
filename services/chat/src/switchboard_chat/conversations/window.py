"""The recent window of a conversation, cached with write-through; the DB stays the source of truth.

The cached entry carries the conversation's last sequence number: an entry that does not match the row
(a write that missed the cache while Redis was down) is ignored and rebuilt from the DB, so a cache outage
never loses or reorders a message.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import orjson
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard_chat.conversations import repository
from switchboard_chat.conversations.models import ConversationRow, MessageRow
from switchboard_shared.stores.base import Cache, StoreUnavailable

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class WindowMessage:
    id: str
    seq: int
    role: str
    text: str
    no_answer: bool = False
    # An assistant message's action waiting for the customer's confirmation (the next turn reads it).
    pending_action: dict[str, Any] | None = None

    @classmethod
    def of(cls, row: MessageRow) -> WindowMessage:
        pending = (row.meta or {}).get("pending_action") if row.role == "assistant" else None
        return cls(
            id=row.id,
            seq=row.seq,
            role=row.role,
            text=row.text,
            no_answer=row.no_answer,
            pending_action=pending,
        )


class RecentWindow:
    def __init__(self, cache: Cache, *, size: int, ttl: float) -> None:
        self.cache = cache
        self.size = size
        self.ttl = ttl

    @staticmethod
    def key(conversation_id: str) -> str:
        # v2: entries carry the pending action; an entry written before it had none, so it is not read.
        return f"chat:window:v2:{conversation_id}"

    async def load(self, session: AsyncSession, conversation: ConversationRow) -> list[WindowMessage]:
        try:
            raw = await self.cache.get(self.key(conversation.id))
        except StoreUnavailable as exc:
            log.warning("window_cache_unavailable", error=str(exc)[:200])
            raw = None
        if raw is not None:
            data = orjson.loads(raw)
            if data.get("seq") == conversation.last_seq:
                return [WindowMessage(**item) for item in data["messages"]]
        rows = await repository.messages(session, conversation_id=conversation.id, last=self.size)
        window = [WindowMessage.of(row) for row in rows]
        await self.store(conversation.id, conversation.last_seq, window)
        return window

    async def store(self, conversation_id: str, seq: int, window: list[WindowMessage]) -> None:
        payload = orjson.dumps({"seq": seq, "messages": [asdict(m) for m in window[-self.size :]]})
        try:
            await self.cache.set(self.key(conversation_id), payload, ttl=self.ttl)
        except StoreUnavailable as exc:
            log.warning("window_cache_write_failed", error=str(exc)[:200])

    async def append(
        self, conversation_id: str, seq: int, window: list[WindowMessage], new: list[MessageRow]
    ) -> list[WindowMessage]:
        updated = [*window, *(WindowMessage.of(row) for row in new)][-self.size :]
        await self.store(conversation_id, seq, updated)
        return updated
