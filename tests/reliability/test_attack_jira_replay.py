"""Replay of a signed Jira webhook through the running fleet: the signature covers the body only, so the
``X-Atlassian-Webhook-Identifier`` header (unsigned) must not decide what is new, and an old signed body
must not be accepted again once it is stale."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import pytest

from .fleet import ReliabilityFleet, make_tenant

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]
SECRET = "jira-webhook-signing-secret"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def comment_event(*, timestamp_ms: int | None, comment_id: str) -> dict[str, Any]:
    """A ``comment_created`` delivery as Jira Cloud sends it (``timestamp`` in ms, ``webhookEvent``)."""
    body: dict[str, Any] = {
        "webhookEvent": "comment_created",
        "issue": {"id": "10042", "key": "SUP-42", "fields": {"summary": "Late order"}},
        "comment": {
            "id": comment_id,
            "body": {"type": "doc", "version": 1, "content": []},
            "author": {"accountId": "5b10a2844c20165700ede21g", "displayName": "Agent"},
        },
    }
    if timestamp_ms is not None:
        body["timestamp"] = timestamp_ms
    return body


def deliver(fleet: ReliabilityFleet, connector_id: str, raw: bytes, identifier: str | None) -> httpx.Response:
    signature = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-Hub-Signature": signature}
    if identifier is not None:
        headers["X-Atlassian-Webhook-Identifier"] = identifier
    return httpx.post(
        f"{fleet.gateway}/v1/channels/jira/{connector_id}", content=raw, headers=headers, timeout=15
    )


@pytest.fixture(scope="module")
def connector_id(fleet: ReliabilityFleet) -> str:
    keys = make_tenant(fleet.gateway, "jirareplay")
    created = httpx.post(
        f"{fleet.gateway}/v1/connectors",
        json={
            "kind": "jira",
            "settings": {
                "base_url": "https://shop.atlassian.net",
                "email": "a@shop.example",
                "project_key": "SUP",
            },
            "secrets": {"api_token": "tok", "webhook_secret": SECRET},
        },
        headers=bearer(keys["admin_key"]),
        timeout=15,
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def test_replayed_signed_body_is_processed_once(fleet: ReliabilityFleet, connector_id: str) -> None:
    raw = json.dumps(comment_event(timestamp_ms=int(time.time() * 1000), comment_id="30001")).encode()
    answers = [deliver(fleet, connector_id, raw, identifier) for identifier in ("id-1", "id-2", None, "id-1")]
    assert [a.status_code for a in answers] == [200, 200, 200, 200], [a.text for a in answers]
    assert [a.json()["duplicate"] for a in answers] == [False, True, True, True], [a.text for a in answers]


def test_stale_or_undated_signed_body_is_refused(fleet: ReliabilityFleet, connector_id: str) -> None:
    three_days_ago = int((time.time() - 3 * 86_400) * 1000)
    stale = json.dumps(comment_event(timestamp_ms=three_days_ago, comment_id="30002")).encode()
    answer = deliver(fleet, connector_id, stale, "fresh-identifier")
    assert answer.status_code in (400, 403), answer.text
    assert answer.json()["error"]["code"] in ("forbidden", "bad_request")
    undated = json.dumps(comment_event(timestamp_ms=None, comment_id="30003")).encode()
    answer = deliver(fleet, connector_id, undated, "another-identifier")
    assert answer.status_code in (400, 403), answer.text
    future = int((time.time() + 86_400) * 1000)
    answer = deliver(
        fleet, connector_id, json.dumps(comment_event(timestamp_ms=future, comment_id="30004")).encode(), "x"
    )
    assert answer.status_code in (400, 403), answer.text
