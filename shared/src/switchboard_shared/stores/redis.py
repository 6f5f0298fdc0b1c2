"""Redis store implementations for production: shared across replicas, never the source of truth."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from limits.aio.storage import RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from switchboard_shared.stores.base import (
    Cache,
    Lock,
    LockStore,
    LockTimeout,
    RateLimiter,
    RateLimitResult,
    StoreUnavailable,
)
from switchboard_shared.stores.memory import LimitsRateLimiter

T = TypeVar("T")

# Delete the key only if it still holds our token: a lock that expired and was taken by another
# owner is never released by the first one.
RELEASE_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""
INCR_SCRIPT = """
local value = redis.call('incrby', KEYS[1], ARGV[1])
if value == tonumber(ARGV[1]) and tonumber(ARGV[2]) > 0 then
    redis.call('pexpire', KEYS[1], ARGV[2])
end
return value
"""


def create_redis(url: str) -> Redis:
    return Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=2.0, health_check_interval=15)


async def _guard(call: Callable[[], Awaitable[T]]) -> T:
    try:
        return await call()
    except (RedisError, OSError) as exc:
        raise StoreUnavailable(str(exc)) from exc


def _ms(ttl: float | None) -> int | None:
    return max(1, int(ttl * 1000)) if ttl else None


class RedisCache(Cache):
    def __init__(self, redis: Redis, *, prefix: str = "sb:") -> None:
        self.redis = redis
        self.prefix = prefix
        self._incr = redis.register_script(INCR_SCRIPT)

    async def get(self, key: str) -> bytes | None:
        value: Any = await _guard(lambda: self.redis.get(self.prefix + key))
        return bytes(value) if value is not None else None

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        await _guard(lambda: self.redis.set(self.prefix + key, value, px=_ms(ttl)))

    async def add(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        result = await _guard(lambda: self.redis.set(self.prefix + key, value, px=_ms(ttl), nx=True))
        return bool(result)

    async def delete(self, key: str) -> None:
        await _guard(lambda: self.redis.delete(self.prefix + key))

    async def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        result = await _guard(lambda: self._incr(keys=[self.prefix + key], args=[amount, _ms(ttl) or 0]))
        return int(result)

    async def ping(self) -> None:
        await _guard(lambda: self.redis.ping())

    async def close(self) -> None:
        await self.redis.aclose()


class RedisLockStore(LockStore):
    def __init__(self, redis: Redis, *, prefix: str = "sb:lock:") -> None:
        self.redis = redis
        self.prefix = prefix
        self._release = redis.register_script(RELEASE_SCRIPT)

    async def acquire(self, key: str, *, ttl: float, timeout: float) -> Lock:
        token = secrets.token_hex(16)
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            acquired = await _guard(lambda: self.redis.set(self.prefix + key, token, px=_ms(ttl), nx=True))
            if acquired:
                return Lock(key, token)
            if time.monotonic() + delay > deadline:
                raise LockTimeout(key)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)

    async def release(self, lock: Lock) -> bool:
        result = await _guard(lambda: self._release(keys=[self.prefix + lock.key], args=[lock.token]))
        return bool(result)


class RedisRateLimiter(LimitsRateLimiter):
    def __init__(self, url: str) -> None:
        storage_url = url.replace("redis://", "async+redis://", 1).replace("rediss://", "async+rediss://", 1)
        storage = RedisStorage(storage_url, implementation="redispy")
        super().__init__(storage, strategy=SlidingWindowCounterRateLimiter(storage))  # type: ignore[arg-type]

    async def hit(self, key: str, *, limit: int, period_seconds: int, cost: int = 1) -> RateLimitResult:
        try:
            return await super().hit(key, limit=limit, period_seconds=period_seconds, cost=cost)
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(str(exc)) from exc


__all__ = ["RateLimiter", "RedisCache", "RedisLockStore", "RedisRateLimiter", "create_redis"]
