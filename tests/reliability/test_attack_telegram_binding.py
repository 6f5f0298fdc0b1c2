"""Pre-binding someone else's Telegram bot through the running fleet: a tenant that posts a made-up token
with the victim's bot id must not bind it (the token is checked with the Bot API's ``getMe`` at the
configured API base, and the bot id bound is the one ``getMe`` returns), so the real owner can bind it."""

from __future__ import annotations

import httpx
import pytest

from .fleet import ReliabilityFleet, make_tenant

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]
BOT_ID = 7000000042
REAL_TOKEN = f"{BOT_ID}:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw4"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def bind(fleet: ReliabilityFleet, admin_key: str, token: str) -> httpx.Response:
    return httpx.post(
        f"{fleet.gateway}/v1/connectors/channels",
        json={"channel": "telegram", "secrets": {"bot_token": token, "secret_token": "hook-secret-1"}},
        headers=bearer(admin_key),
        timeout=15,
    )


def test_fake_token_cannot_claim_a_bot_id(fleet: ReliabilityFleet) -> None:
    fleet.telegram.bots[REAL_TOKEN] = BOT_ID
    squatter = make_tenant(fleet.gateway, "botsquatter")
    owner = make_tenant(fleet.gateway, "botowner")
    for fake in (
        f"{BOT_ID}:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        f"{BOT_ID}:{'x' * 35}",
        # A real token of another bot, relabelled with the victim's id: getMe says which bot it is.
    ):
        squatted = bind(fleet, squatter["admin_key"], fake)
        assert squatted.status_code in (400, 401, 403, 422), squatted.text
        assert squatted.json()["error"]["code"], squatted.text
    other_token = "7000000043:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw5"
    fleet.telegram.bots[other_token] = 7000000099
    relabelled = bind(fleet, squatter["admin_key"], other_token)
    if relabelled.status_code == 201:
        assert relabelled.json()["external_id"] == "7000000099", relabelled.text
    owned = bind(fleet, owner["admin_key"], REAL_TOKEN)
    assert owned.status_code == 201, owned.text
    assert owned.json()["external_id"] == str(BOT_ID)
    assert REAL_TOKEN not in owned.text
