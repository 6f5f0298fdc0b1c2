"""``switchboard telegram set-webhook`` against a local stand-in for api.telegram.org."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from integrations_fakes import FakeServer, Recorded
from test_telegram import BOT_ID, BOT_TOKEN
from typer.testing import CliRunner

from switchboard_cli.main import app

Fake = Callable[[], Awaitable[FakeServer]]


@pytest.mark.asyncio
async def test_set_webhook_sends_the_url_and_secret(fake: Fake) -> None:
    telegram = await fake()

    @telegram.route(f"POST /bot{BOT_TOKEN}/setWebhook")
    async def set_webhook(_: Recorded) -> web.StreamResponse:
        return web.json_response({"ok": True, "result": True, "description": "Webhook was set"})

    @telegram.route(f"POST /bot{BOT_TOKEN}/getWebhookInfo")
    async def info(_: Recorded) -> web.StreamResponse:
        return web.json_response(
            {
                "ok": True,
                "result": {
                    "url": "https://sb.example/v1/channels/telegram/7000000001",
                    "pending_update_count": 2,
                    "has_custom_certificate": False,
                },
            }
        )

    runner = CliRunner()
    args = [
        "telegram",
        "set-webhook",
        "--bot-token",
        BOT_TOKEN,
        "--secret-token",
        "s3cret_tok-1",
        "--public-url",
        "https://sb.example/",
        "--api-base",
        telegram.url,
        "--drop-pending-updates",
    ]
    result = await asyncio.to_thread(runner.invoke, app, args)
    assert result.exit_code == 0, result.output
    assert f"https://sb.example/v1/channels/telegram/{BOT_ID}" in result.output
    [request] = telegram.requests
    assert request.json() == {
        "url": f"https://sb.example/v1/channels/telegram/{BOT_ID}",
        "secret_token": "s3cret_tok-1",
        "allowed_updates": ["message", "edited_message"],
        "drop_pending_updates": True,
        "max_connections": 40,
    }
    info_result = await asyncio.to_thread(
        runner.invoke, app, ["telegram", "webhook-info", "--bot-token", BOT_TOKEN, "--api-base", telegram.url]
    )
    assert "Pending updates: 2" in info_result.output

    bad = await asyncio.to_thread(
        runner.invoke,
        app,
        [
            "telegram",
            "set-webhook",
            "--bot-token",
            "nope",
            "--secret-token",
            "x",
            "--public-url",
            "https://a",
            "--api-base",
            telegram.url,
        ],
    )
    assert bad.exit_code != 0 and len(telegram.requests) == 2


@pytest.mark.asyncio
async def test_set_webhook_reports_telegrams_refusal(fake: Fake) -> None:
    telegram = await fake()

    @telegram.route(f"POST /bot{BOT_TOKEN}/setWebhook")
    async def refuse(_: Recorded) -> web.StreamResponse:
        return web.json_response(
            {
                "ok": False,
                "error_code": 400,
                "description": "Bad Request: bad webhook: HTTPS url must be provided for webhook",
            },
            status=400,
        )

    result = await asyncio.to_thread(
        CliRunner().invoke,
        app,
        [
            "telegram",
            "set-webhook",
            "--bot-token",
            BOT_TOKEN,
            "--secret-token",
            "abc",
            "--public-url",
            "http://insecure",
            "--api-base",
            telegram.url,
        ],
    )
    assert result.exit_code == 1
    assert "HTTPS url must be provided" in " ".join(result.output.split())
