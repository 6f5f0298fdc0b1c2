"""Attack: hijack a customer's Telegram or WhatsApp conversation through the public API.

A widget key (public: any page can hold it) or an API caller opens a conversation claiming a messenger
channel and the victim's chat key; the next message the victim sends on the messenger must never land in a
conversation the attacker can read. Integrations hands a verified webhook's message to chat's
``/internal/v1/inbound`` (with the internal token); the test does exactly that after the attempt.
"""

from __future__ import annotations

import uuid

import httpx
import pytest

from .fleet import INTERNAL_TOKEN, ReliabilityFleet

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]
ORIGIN = "http://localhost:3000"


def widget_headers(fleet: ReliabilityFleet, visitor: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {fleet.demo['widget_key']}",
        "Origin": ORIGIN,
        "X-Anonymous-ID": visitor,
    }


def victim_says(fleet: ReliabilityFleet, channel: str, chat_key: str, text: str) -> dict[str, object]:
    """What integrations does with a verified webhook's message."""
    body = {
        "channel": channel,
        "end_user_id": f"{channel}:{chat_key.split(':')[1]}",
        "external_key": chat_key,
        "text": text,
        "idempotency_key": f"{channel}:update:{uuid.uuid4().hex}",
    }
    response = httpx.post(
        f"{fleet.url('chat-a')}/internal/v1/inbound",
        json=body,
        headers={"X-Internal-Token": INTERNAL_TOKEN, "X-Tenant-ID": "demo"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()
    return result


@pytest.mark.parametrize("channel", ["telegram", "whatsapp"])
def test_public_keys_cannot_open_or_receive_a_messenger_conversation(
    fleet: ReliabilityFleet, channel: str
) -> None:
    chat_key = f"7000000001:{uuid.uuid4().int % 10**9}"
    visitor = f"hijacker-{channel}"
    gw = fleet.gateway
    attempts = {
        "widget, messenger channel": (
            widget_headers(fleet, visitor),
            {"end_user_id": f"anon:{visitor}", "channel": channel, "external_key": chat_key},
        ),
        "widget, web channel with the chat key": (
            widget_headers(fleet, visitor),
            {"end_user_id": f"anon:{visitor}", "channel": "web", "external_key": chat_key},
        ),
        "widget, api channel": (
            widget_headers(fleet, visitor),
            {"end_user_id": f"anon:{visitor}", "channel": "api"},
        ),
        "server key, messenger channel": (
            {"Authorization": f"Bearer {fleet.demo['server_key']}"},
            {"end_user_id": f"{channel}:1", "channel": channel, "external_key": chat_key},
        ),
    }
    opened: dict[str, str] = {}
    statuses: dict[str, int] = {}
    for what, (headers, body) in attempts.items():
        response = httpx.post(f"{gw}/v1/conversations", json=body, headers=headers, timeout=30)
        statuses[what] = response.status_code
        if response.status_code < 400:
            opened[what] = response.json()["id"]
        else:
            assert response.status_code == 403, (what, response.status_code, response.text)
            assert response.json()["error"]["code"] == "forbidden"
    secret = f"my one-time code is {uuid.uuid4().hex[:8]}"
    delivered = victim_says(fleet, channel, chat_key, f"Hello, {secret}. How long does shipping take?")
    # Whatever was opened, the victim's message went to a conversation of its own.
    assert delivered["conversation_id"] not in opened.values(), (statuses, delivered["conversation_id"])
    for what, conversation_id in opened.items():
        headers = attempts[what][0]
        read = httpx.get(f"{gw}/v1/conversations/{conversation_id}", headers=headers, timeout=30)
        assert secret not in read.text, what
    assert not opened, f"the public API opened conversations it must refuse: {statuses}"
    # The widget still opens its own web conversations.
    own = httpx.post(
        f"{gw}/v1/conversations",
        json={"end_user_id": f"anon:{visitor}"},
        headers=widget_headers(fleet, visitor),
        timeout=30,
    )
    assert own.status_code == 201, own.text
    assert own.json()["channel"] == "web" and own.json()["external_key"] is None
    # And the messenger chat keeps its one conversation.
    again = victim_says(fleet, channel, chat_key, "And what about returns?")
    assert again["conversation_id"] == delivered["conversation_id"]
