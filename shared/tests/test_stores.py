"""One contract suite for every store, run against the in-process and the Redis implementation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from switchboard_shared.stores import LockTimeout, Stores, create_stores


@pytest_asyncio.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def stores(request: pytest.FixtureRequest) -> AsyncIterator[Stores]:
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    created = create_stores(url)
    assert created.backend == request.param
    yield created
    await created.close()


@pytest.mark.asyncio
async def test_cache_get_set_delete_and_ttl(stores: Stores) -> None:
    cache = stores.cache
    assert await cache.get("k") is None
    await cache.set("k", b"v1")
    assert await cache.get("k") == b"v1"
    await cache.set("short", b"x", ttl=0.05)
    assert await cache.get("short") == b"x"
    await asyncio.sleep(0.1)
    assert await cache.get("short") is None
    await cache.delete("k")
    assert await cache.get("k") is None


@pytest.mark.asyncio
async def test_cache_add_is_set_if_absent(stores: Stores) -> None:
    assert await stores.cache.add("once", b"1", ttl=5) is True
    assert await stores.cache.add("once", b"2", ttl=5) is False
    assert await stores.cache.get("once") == b"1"


@pytest.mark.asyncio
async def test_cache_counter(stores: Stores) -> None:
    assert await stores.cache.incr("n", ttl=5) == 1
    assert await stores.cache.incr("n", 4, ttl=5) == 5


@pytest.mark.asyncio
async def test_lock_is_exclusive_and_ordered(stores: Stores) -> None:
    order: list[str] = []

    async def worker(name: str) -> None:
        async with stores.locks.hold("conv-1", ttl=5, timeout=5):
            order.append(f"{name}-in")
            await asyncio.sleep(0.02)
            order.append(f"{name}-out")

    await asyncio.gather(*(worker(str(i)) for i in range(4)))
    # Never interleaved: every "in" is followed by its own "out".
    for index in range(0, len(order), 2):
        assert order[index].replace("-in", "") == order[index + 1].replace("-out", "")


@pytest.mark.asyncio
async def test_lock_timeout_and_safe_release(stores: Stores) -> None:
    held = await stores.locks.acquire("k", ttl=5, timeout=1)
    started = time.monotonic()
    with pytest.raises(LockTimeout):
        await stores.locks.acquire("k", ttl=5, timeout=0.1)
    assert time.monotonic() - started < 1.0
    assert await stores.locks.release(held) is True
    assert await stores.locks.release(held) is False  # already released


@pytest.mark.asyncio
async def test_expired_lock_is_taken_and_old_owner_cannot_release(stores: Stores) -> None:
    first = await stores.locks.acquire("k", ttl=0.05, timeout=1)
    second = await stores.locks.acquire("k", ttl=5, timeout=1)  # waits for expiry
    assert await stores.locks.release(first) is False
    assert await stores.locks.release(second) is True


@pytest.mark.asyncio
async def test_rate_limiter(stores: Stores) -> None:
    results = [await stores.rate_limiter.hit("key-a", limit=3, period_seconds=60) for _ in range(4)]
    assert [r.allowed for r in results] == [True, True, True, False]
    assert results[3].remaining == 0 and results[3].retry_after >= 1
    other = await stores.rate_limiter.hit("key-b", limit=3, period_seconds=60)
    assert other.allowed and other.retry_after == 0


@pytest.mark.asyncio
async def test_idempotency_keys(stores: Stores) -> None:
    assert await stores.idempotency.claim("update-1") is True
    assert await stores.idempotency.claim("update-1") is False
    await stores.idempotency.forget("update-1")
    assert await stores.idempotency.claim("update-1") is True


@pytest.mark.redis
@pytest.mark.asyncio
async def test_two_clients_share_redis_state(redis_url: str) -> None:
    one, two = create_stores(redis_url), create_stores(redis_url)
    try:
        lock = await one.locks.acquire("shared", ttl=5, timeout=1)
        with pytest.raises(LockTimeout):
            await two.locks.acquire("shared", ttl=5, timeout=0.1)
        await one.locks.release(lock)
        assert await two.idempotency.claim("x") is True
        assert await one.idempotency.claim("x") is False
    finally:
        await one.close()
        await two.close()


@pytest.mark.asyncio
async def test_redis_outage_raises_store_unavailable() -> None:
    from switchboard_shared.stores import StoreUnavailable
    from switchboard_shared.testing.servers import free_port

    stores = create_stores(f"redis://127.0.0.1:{free_port()}/0")
    try:
        with pytest.raises(StoreUnavailable):
            await stores.cache.get("k")
        with pytest.raises(StoreUnavailable):
            await stores.locks.acquire("k", ttl=1, timeout=0.1)
    finally:
        await stores.close()
