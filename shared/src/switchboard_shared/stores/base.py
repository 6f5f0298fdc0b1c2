"""The store interfaces: a TTL cache, per-key locks with owner tokens, a rate limiter, idempotency keys."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass


class StoreUnavailable(Exception):
    """The backing store (Redis) cannot be reached; callers fall back to the source of truth."""


class LockTimeout(Exception):
    """The lock was not acquired within the timeout."""


class Cache(abc.ABC):
    @abc.abstractmethod
    async def get(self, key: str) -> bytes | None: ...

    @abc.abstractmethod
    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None: ...

    @abc.abstractmethod
    async def add(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        """Set only if absent; True when this call set it."""

    @abc.abstractmethod
    async def delete(self, key: str) -> None: ...

    @abc.abstractmethod
    async def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        """Add to an integer counter, creating it (with the TTL) when absent."""

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None


@dataclass(slots=True)
class Lock:
    key: str
    token: str


class LockStore(abc.ABC):
    @abc.abstractmethod
    async def acquire(self, key: str, *, ttl: float, timeout: float) -> Lock:
        """Wait up to ``timeout`` seconds; the lock frees itself after ``ttl`` if its owner dies."""

    @abc.abstractmethod
    async def release(self, lock: Lock) -> bool:
        """Release only if still owned by this token; False when it expired or someone else holds it."""

    @asynccontextmanager
    async def hold(self, key: str, *, ttl: float = 60.0, timeout: float = 30.0) -> AsyncIterator[Lock]:
        lock = await self.acquire(key, ttl=ttl, timeout=timeout)
        try:
            yield lock
        finally:
            await self.release(lock)


@dataclass(slots=True)
class RateLimitResult:
    allowed: bool
    limit: int
    remaining: int | None  # 0 when refused; not computed for an allowed hit (it costs a round trip)
    retry_after: float


class RateLimiter(abc.ABC):
    @abc.abstractmethod
    async def hit(self, key: str, *, limit: int, period_seconds: int, cost: int = 1) -> RateLimitResult: ...


class IdempotencyStore:
    """Claims an idempotency key once within its TTL (built on the cache's set-if-absent)."""

    def __init__(self, cache: Cache, *, prefix: str = "idem:") -> None:
        self.cache = cache
        self.prefix = prefix

    async def claim(self, key: str, *, ttl: float = 86_400) -> bool:
        return await self.cache.add(self.prefix + key, b"1", ttl=ttl)

    async def forget(self, key: str) -> None:
        await self.cache.delete(self.prefix + key)
