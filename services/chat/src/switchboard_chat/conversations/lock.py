"""The conversation's lock: messages of one conversation never interleave, across replicas."""

from __future__ import annotations

import asyncio

import structlog

from switchboard_shared.errors import AppError, ErrorCode
from switchboard_shared.stores.base import Lock, LockStore, LockTimeout, StoreUnavailable

log = structlog.get_logger(__name__)

_local_locks: dict[str, asyncio.Lock] = {}


class ConversationLock:
    """The conversation's lock in the shared lock store, or a per-process lock while that store is down."""

    def __init__(self, store: LockStore, conversation_id: str, *, ttl: float, wait: float) -> None:
        self.store = store
        self.key = f"chat:conversation:{conversation_id}"
        self.ttl = ttl
        self.wait = wait
        self.lock: Lock | None = None
        self.local: asyncio.Lock | None = None

    async def acquire(self) -> None:
        try:
            self.lock = await self.store.acquire(self.key, ttl=self.ttl, timeout=self.wait)
        except LockTimeout as exc:
            raise AppError(
                ErrorCode.CONFLICT,
                "The conversation is busy with an earlier message; try again shortly.",
                headers={"Retry-After": "2"},
            ) from exc
        except StoreUnavailable as exc:
            log.warning("conversation_lock_store_unavailable", error=str(exc)[:200])
            self.local = _local_locks.setdefault(self.key, asyncio.Lock())
            await self.local.acquire()

    async def release(self) -> None:
        if self.local is not None:
            self.local.release()
            self.local = None
        if self.lock is not None:
            try:
                await self.store.release(self.lock)
            except StoreUnavailable as exc:
                log.warning("conversation_lock_release_failed", error=str(exc)[:200])
            self.lock = None

    async def __aenter__(self) -> ConversationLock:
        await self.acquire()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.release()
