"""Picks the store implementations from settings: Redis when a URL is configured, in-process otherwise."""

from __future__ import annotations

from dataclasses import dataclass

from switchboard_shared.stores.base import Cache, IdempotencyStore, LockStore, RateLimiter
from switchboard_shared.stores.memory import LimitsRateLimiter, MemoryCache, MemoryLockStore
from switchboard_shared.stores.redis import RedisCache, RedisLockStore, RedisRateLimiter, create_redis


@dataclass(slots=True)
class Stores:
    cache: Cache
    locks: LockStore
    rate_limiter: RateLimiter
    idempotency: IdempotencyStore
    backend: str

    async def ping(self) -> None:
        await self.cache.ping()

    async def close(self) -> None:
        await self.cache.close()


def create_stores(redis_url: str | None, *, prefix: str = "sb:") -> Stores:
    if redis_url:
        redis = create_redis(redis_url)
        cache: Cache = RedisCache(redis, prefix=prefix)
        return Stores(
            cache=cache,
            locks=RedisLockStore(redis, prefix=f"{prefix}lock:"),
            rate_limiter=RedisRateLimiter(redis_url),
            idempotency=IdempotencyStore(cache),
            backend="redis",
        )
    memory_cache = MemoryCache()
    return Stores(
        cache=memory_cache,
        locks=MemoryLockStore(),
        rate_limiter=LimitsRateLimiter(),
        idempotency=IdempotencyStore(memory_cache),
        backend="memory",
    )
