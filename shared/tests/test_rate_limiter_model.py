"""The sliding-window rate limiter against a reference model of the sliding window counter, on a simulated
clock: per key, fixed windows of ``period`` seconds; a hit of ``cost`` is allowed when
``floor(previous · (time left in the window / period) + current) + cost <= limit``. A refused hit says
how long to wait, and waiting that long is enough. Both stores keep the plain budget on a fresh key."""

from __future__ import annotations

import asyncio
import math
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from types import SimpleNamespace
from unittest import mock

import limits.aio.storage.memory
import limits.aio.strategies
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard_shared.stores import create_stores
from switchboard_shared.stores.memory import LimitsRateLimiter

PROPERTY = settings(max_examples=150, deadline=None)


@dataclass
class ReferenceWindow:
    limit: int
    period: int
    counts: dict[int, int] = field(default_factory=dict)  # window number -> cost allowed in it

    def weighted(self, now: float) -> float:
        window = math.floor(now / self.period)
        left = 1 - (now / self.period - window)
        return self.counts.get(window - 1, 0) * left + self.counts.get(window, 0)

    def hit(self, now: float, cost: int) -> bool:
        if cost > self.limit or math.floor(self.weighted(now)) + cost > self.limit:
            return False
        window = math.floor(now / self.period)
        self.counts[window] = self.counts.get(window, 0) + cost
        return True


class Clock:
    def __init__(self, start: float) -> None:
        self.now = start

    def time(self) -> float:
        return self.now


steps = st.lists(
    st.tuples(st.floats(0, 40, allow_nan=False), st.integers(1, 4)),  # (seconds since the last hit, cost)
    min_size=1,
    max_size=40,
)


@PROPERTY
@given(
    limit=st.integers(1, 8),
    period=st.sampled_from([1, 5, 10, 60]),
    start=st.floats(1_700_000_000, 1_800_000_000, allow_nan=False),
    sequence=steps,
)
def test_the_limiter_follows_the_sliding_window_counter(
    limit: int, period: int, start: float, sequence: list[tuple[float, int]]
) -> None:
    clock = Clock(start)
    fake_time = SimpleNamespace(time=clock.time)
    model = ReferenceWindow(limit, period)

    async def run() -> None:
        limiter = LimitsRateLimiter()
        for pause, cost in sequence:
            clock.now += pause
            expected = model.hit(clock.now, cost)
            result = await limiter.hit("key", limit=limit, period_seconds=period, cost=cost)
            assert result.allowed is expected, (clock.now, cost, model.counts)
            if expected or cost > limit:
                continue
            assert result.remaining == 0 and result.retry_after >= 1.0
            # A client that honours Retry-After is let in when it comes back (cost 1 probe, not recorded).
            probe = ReferenceWindow(limit, period, dict(model.counts))
            assert probe.hit(clock.now + result.retry_after, 1), (result.retry_after, model.counts)

    with ExitStack() as stack:
        for module in (limits.aio.storage.memory, limits.aio.strategies):
            stack.enter_context(mock.patch.object(module, "time", fake_time))
        asyncio.run(run())


@pytest.mark.parametrize("backend", ["memory", pytest.param("redis", marks=pytest.mark.redis)])
def test_a_fresh_key_gets_exactly_its_budget(request: pytest.FixtureRequest, backend: str) -> None:
    url = request.getfixturevalue("redis_url") if backend == "redis" else None

    @settings(max_examples=40, deadline=None)
    @given(limit=st.integers(1, 10), costs=st.lists(st.integers(1, 4), min_size=1, max_size=20))
    def budget(limit: int, costs: list[int]) -> None:
        async def run() -> None:
            stores = create_stores(url)
            try:
                key, used = f"budget:{uuid.uuid4().hex}", 0
                for cost in costs:
                    # A period of a million seconds: the test never crosses a window boundary.
                    result = await stores.rate_limiter.hit(
                        key, limit=limit, period_seconds=1_000_000, cost=cost
                    )
                    assert result.allowed is (used + cost <= limit), (used, cost, limit)
                    used += cost if result.allowed else 0
            finally:
                await stores.close()

        asyncio.run(run())

    budget()
