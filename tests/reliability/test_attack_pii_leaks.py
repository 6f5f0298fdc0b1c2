"""Attack surface: personal data a customer types reaching analytics, its exports and PostHog.

Card and phone numbers in any common notation (spaces, dashes, dots, brackets; Russian and English forms)
and IBANs are redacted before anything is stored in analytics; end-user ids are stored and exported only as
per-tenant pseudonyms; a message with a NUL character is answered and its analytics events are kept."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from .fleet import ReliabilityFleet, make_tenant, retrying

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]

SECRETS = {
    "card with dots": "4111.1111.1111.1111",
    "card with dashes": "5500-0000-0000-0004",
    "card, no separators": "2200123456789010",
    "RU phone with dots": "+7.916.123.45.67",
    "RU phone, brackets": "8 (916) 765-43-21",
    "RU phone, plain": "89161112233",
    "US phone with dots": "415.555.0199",
    "UK phone": "+44 20 7946 0958",
    "IBAN grouped": "DE89 3704 0044 0532 0130 00",
    "IBAN plain": "GB82WEST12345698765432",
    "RU IBAN-like account": "40817810099910004312",
}
DIGITS_OF = {name: "".join(ch for ch in value if ch.isalnum()) for name, value in SECRETS.items()}


def analytics_rows(fleet: ReliabilityFleet, conversation_id: str, at_least: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        rows = fleet.db(
            "analytics",
            "SELECT type, properties::text AS p, end_user_id FROM analytics_events WHERE conversation_id = $1",
            conversation_id,
        )
        if len(rows) >= at_least:
            break
        time.sleep(1)
    return rows


def found_in(text: str) -> list[str]:
    squeezed = "".join(ch for ch in text if ch.isalnum())
    return [name for name, value in SECRETS.items() if value in text or DIGITS_OF[name] in squeezed]


def test_numbers_in_any_notation_are_redacted(fleet: ReliabilityFleet) -> None:
    headers = {"Authorization": f"Bearer {fleet.demo['server_key']}", "X-End-User-ID": "pii-notation"}
    with httpx.Client(base_url=fleet.gateway, headers=headers, timeout=60) as client:
        conversation = retrying(
            client, "POST", "/v1/conversations", json={"end_user_id": "pii-notation"}
        ).json()
        text = "My details: " + "; ".join(f"{name}: {value}" for name, value in SECRETS.items())
        turn = retrying(
            client,
            "POST",
            f"/v1/conversations/{conversation['id']}/messages",
            json={"text": text + ". Refunds?"},
        )
        assert turn.status_code == 200, turn.text
    rows = analytics_rows(fleet, conversation["id"], at_least=3)
    questions = [row["p"] for row in rows if row["type"] == "answer_sent"]
    assert questions, rows
    leaked = found_in(" ".join(row["p"] for row in rows))
    assert not leaked, leaked
    logs = " ".join(fleet.all_logs().values())
    assert not [name for name, value in SECRETS.items() if value in logs]


def test_end_user_ids_are_pseudonymised_per_tenant(fleet: ReliabilityFleet) -> None:
    other = make_tenant(fleet.gateway, "pseudonyms")
    conversations = {}
    for tenant, key in (("demo", fleet.demo["server_key"]), ("pseudonyms", other["server_key"])):
        headers = {"Authorization": f"Bearer {key}", "X-End-User-ID": "customer-8841"}
        with httpx.Client(base_url=fleet.gateway, headers=headers, timeout=60) as client:
            created = retrying(client, "POST", "/v1/conversations", json={"end_user_id": "customer-8841"})
            conversations[tenant] = created.json()["id"]
            turn = retrying(
                client,
                "POST",
                f"/v1/conversations/{created.json()['id']}/messages",
                json={"text": "Returns?"},
            )
            assert turn.status_code == 200, turn.text
    stored = {}
    for tenant, conversation_id in conversations.items():
        rows = analytics_rows(fleet, conversation_id, at_least=3)
        assert rows, tenant
        ids = {row["end_user_id"] for row in rows}
        assert len(ids) == 1 and "customer-8841" not in next(iter(ids)), ids
        stored[tenant] = next(iter(ids))
    assert stored["demo"] != stored["pseudonyms"], "the same customer id links across tenants"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and conversations["demo"] not in json.dumps(fleet.posthog.payloads):
        time.sleep(1)
    exported = json.dumps(fleet.posthog.payloads)
    assert conversations["demo"] in exported
    assert "customer-8841" not in exported
    for table in ("events", "conversations"):
        today = datetime.now(UTC).date()
        export = httpx.get(
            f"{fleet.gateway}/v1/analytics/export/{table}.csv",
            params={"start": str(today - timedelta(days=1)), "end": str(today + timedelta(days=1))},
            headers={"Authorization": f"Bearer {fleet.demo['admin_key']}"},
            timeout=60,
        )
        assert export.status_code == 200, export.text
        assert conversations["demo"] in export.text and "customer-8841" not in export.text


def test_a_message_with_nul_keeps_its_analytics(fleet: ReliabilityFleet) -> None:
    headers = {"Authorization": f"Bearer {fleet.demo['server_key']}", "X-End-User-ID": "nul-sender"}
    with httpx.Client(base_url=fleet.gateway, headers=headers, timeout=60) as client:
        conversation = retrying(
            client, "POST", "/v1/conversations", json={"end_user_id": "nul-sender"}
        ).json()
        turn = retrying(
            client,
            "POST",
            f"/v1/conversations/{conversation['id']}/messages",
            json={"text": "How long\x00 does shipping take?\x07"},
        )
        assert turn.status_code == 200, turn.text
        assert "\x00" not in turn.json()["user_message"]["text"]
    rows = analytics_rows(fleet, conversation["id"], at_least=3)
    types = {row["type"] for row in rows}
    assert {"conversation_started", "message_received", "answer_sent"} <= types, types
