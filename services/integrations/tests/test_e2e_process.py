"""End to end with the real ``python -m switchboard_integrations`` process: the demo CRM process, and a
Telegram round trip through stand-ins for chat and api.telegram.org."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from integrations_fakes import INTERNAL, INTERNAL_TOKEN, FakeChat, FakeServer
from test_telegram import BOT_ID, BOT_TOKEN, SECRET, WEBHOOK, FakeTelegram, update

from switchboard_shared.testing.processes import ServiceProcess

Fake = Callable[[], Awaitable[FakeServer]]


@pytest.mark.e2e
@pytest.mark.asyncio
async def test_service_process_order_lookup_and_telegram_round_trip(
    fake: Fake, chat: FakeChat, demo_crm: ServiceProcess, tmp_path: Path
) -> None:
    telegram = FakeTelegram(await fake())
    process = ServiceProcess(
        "switchboard_integrations",
        {
            "SWITCHBOARD_DATA_DIR": str(tmp_path),
            "SWITCHBOARD_ENVIRONMENT": "test",
            "SWITCHBOARD_INTERNAL_TOKEN": INTERNAL_TOKEN,
            "SWITCHBOARD_CHAT_URL": chat.server.url,
            "INTEGRATIONS_DEMO_CRM_URL": demo_crm.url,
            "INTEGRATIONS_TELEGRAM_API_BASE": telegram.server.url,
        },
        name="integrations",
    )
    await asyncio.to_thread(process.start)
    try:
        async with httpx.AsyncClient(base_url=process.url, timeout=30.0) as client:
            headers = {**INTERNAL, "X-Tenant-ID": "demo"}
            order = await client.post(
                "/internal/v1/crm/orders/lookup", json={"order_number": "B-2001"}, headers=headers
            )
            assert order.status_code == 200, order.text
            assert (
                order.json()["status"] == "shipped"
                and order.json()["tracking_number"] == "1Z999AA10123456784"
            )
            binding = await client.post(
                "/internal/v1/connectors/channels",
                json={"channel": "telegram", "secrets": {"bot_token": BOT_TOKEN, "secret_token": SECRET}},
                headers=headers,
            )
            assert binding.status_code == 201, binding.text
            hook_headers = {**INTERNAL, "X-Telegram-Bot-Api-Secret-Token": SECRET}
            response = await client.post(WEBHOOK, json=update(501), headers=hook_headers)
            assert response.json()["processed"] == 1, response.text
            assert chat.inbound[0].external_key == f"{BOT_ID}:123456789"
            assert telegram.sent[0]["text"] == "Your order A-1001 has shipped."
            assert telegram.sent[0]["parse_mode"] == "HTML"
            duplicate = await client.post(WEBHOOK, json=update(501), headers=hook_headers)
            assert duplicate.json()["duplicates"] == 1 and len(telegram.sent) == 1
            forged = await client.post(
                WEBHOOK, json=update(502), headers={**INTERNAL, "X-Telegram-Bot-Api-Secret-Token": "x"}
            )
            assert forged.status_code == 403
            ready = (await client.get("/readyz")).json()
            assert ready["status"] == "ready" and ready["breakers"]["telegram"] == "closed"
    finally:
        await asyncio.to_thread(process.stop)
