"""Duplicate webhooks stay duplicates when Redis forgets: the database receipt is the durable half."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from integrations_fakes import FakeChat, FakeServer, ServiceFactory
from redis.asyncio import Redis
from test_telegram import BOT_TOKEN, SECRET, WEBHOOK, FakeTelegram, hook_headers, update

Fake = Callable[[], Awaitable[FakeServer]]


@pytest.mark.redis
@pytest.mark.asyncio
async def test_duplicate_update_after_redis_flush_is_still_dropped(
    fake: Fake, chat: FakeChat, service_factory: ServiceFactory, redis_url: str
) -> None:
    telegram = FakeTelegram(await fake())
    service = await service_factory(
        chat_url=chat.server.url, telegram_api_base=telegram.server.url, redis_url=redis_url
    )
    await service.client.post(
        "/internal/v1/connectors/channels",
        json={"channel": "telegram", "secrets": {"bot_token": BOT_TOKEN, "secret_token": SECRET}},
        headers=service.headers(),
    )
    ready = (await service.client.get("/readyz")).json()
    assert ready["checks"]["redis"]["ok"] is True
    assert (await service.client.post(WEBHOOK, json=update(77), headers=hook_headers(service))).json()[
        "processed"
    ] == 1
    redis = Redis.from_url(redis_url)
    try:
        assert any(b"webhook:telegram" in key for key in await redis.keys("*"))
        await redis.flushdb()
    finally:
        await redis.aclose()
    again = await service.client.post(WEBHOOK, json=update(77), headers=hook_headers(service))
    assert again.json() == {"ok": True, "processed": 0, "duplicates": 1, "ignored": 0}
    assert len(chat.inbound) == 1 and len(telegram.sent) == 1
