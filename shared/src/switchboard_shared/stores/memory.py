"""In-process store implementations for the embedded (single-process) mode and for tests."""

from __future__ import annotations

import asyncio
import secrets
import time

from limits import RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from switchboard_shared.stores.base import Cache, Lock, LockStore, LockTimeout, RateLimiter, RateLimitResult


class MemoryCache(Cache):
    def __init__(self, *, max_entries: int = 100_000) -> None:
        self._data: dict[str, tuple[bytes, float | None]] = {}
        self.max_entries = max_entries

    def _alive(self, key: str) -> bytes | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        value, expires = entry
        if expires is not None and expires <= time.monotonic():
            del self._data[key]
            return None
        return value

    def _put(self, key: str, value: bytes, ttl: float | None) -> None:
        if len(self._data) >= self.max_entries and key not in self._data:
            self._data.pop(next(iter(self._data)))
        self._data[key] = (value, time.monotonic() + ttl if ttl else None)

    async def get(self, key: str) -> bytes | None:
        return self._alive(key)

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        self._put(key, value, ttl)

    async def add(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        if self._alive(key) is not None:
            return False
        self._put(key, value, ttl)
        return True

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    async def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        current = self._alive(key)
        if current is None:
            value = amount
            self._put(key, str(value).encode(), ttl)
        else:
            value = int(current) + amount
            _, expires = self._data[key]
            self._data[key] = (str(value).encode(), expires)
        return value


class MemoryLockStore(LockStore):
    def __init__(self) -> None:
        self._held: dict[str, tuple[str, float]] = {}
        self._released = asyncio.Event()

    def _try(self, key: str, token: str, ttl: float) -> bool:
        now = time.monotonic()
        holder = self._held.get(key)
        if holder is None or holder[1] <= now:
            self._held[key] = (token, now + ttl)
            return True
        return False

    async def acquire(self, key: str, *, ttl: float, timeout: float) -> Lock:
        token = secrets.token_hex(16)
        deadline = time.monotonic() + timeout
        while not self._try(key, token, ttl):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LockTimeout(key)
            holder = self._held.get(key)
            expiry_in = holder[1] - time.monotonic() if holder else 0.0
            self._released.clear()
            try:
                await asyncio.wait_for(
                    self._released.wait(), timeout=max(0.001, min(remaining, expiry_in, 0.5))
                )
            except TimeoutError:
                pass
        return Lock(key, token)

    async def release(self, lock: Lock) -> bool:
        holder = self._held.get(lock.key)
        if holder is None or holder[0] != lock.token or holder[1] <= time.monotonic():
            return False
        del self._held[lock.key]
        self._released.set()
        return True


class LimitsRateLimiter(RateLimiter):
    """Sliding-window-counter rate limiting from the ``limits`` library, on any of its async storages."""

    def __init__(self, storage: MemoryStorage | None = None, *, strategy: object | None = None) -> None:
        self.storage = storage or MemoryStorage()
        self.strategy = strategy or SlidingWindowCounterRateLimiter(self.storage)

    async def hit(self, key: str, *, limit: int, period_seconds: int, cost: int = 1) -> RateLimitResult:
        item = RateLimitItemPerSecond(limit, period_seconds)
        strategy = self.strategy
        assert isinstance(strategy, SlidingWindowCounterRateLimiter)
        if await strategy.hit(item, key, cost=cost):
            # The window's stats cost another storage round trip (Redis): read them only to refuse.
            return RateLimitResult(allowed=True, limit=limit, remaining=None, retry_after=0.0)
        window = await self.storage.get_sliding_window(item.key_for(key), period_seconds)
        wait = seconds_until_allowed(limit=limit, period=period_seconds, cost=cost, window=window)
        return RateLimitResult(allowed=False, limit=limit, remaining=0, retry_after=max(1.0, wait))


def seconds_until_allowed(
    *, limit: int, period: int, cost: int, window: tuple[int, float, int, float]
) -> float:
    """How long until a hit of ``cost`` fits the sliding window counter again, from the storage's
    (previous count, previous TTL, current count, current TTL). The library's own reset time is the next
    change of the count, which can come before there is room: a client honouring it would be refused again.
    """
    previous, previous_ttl, current, current_ttl = window
    room = limit - cost + 1  # the weighted count must fall below this
    if room <= 0:
        return float(period)  # never fits: a cost above the limit
    if current < room:
        # Still in this window: the previous window's weight shrinks until the hit fits.
        wait = previous_ttl - (room - current) * period / previous if previous else 0.0
    else:
        # Only the next window has room, once this window's count has faded enough as the previous one.
        wait = max(0.0, current_ttl - period) + period * (1 - room / current)
    return max(0.0, wait) + 0.001  # the fit is strict (the floor of the count)
