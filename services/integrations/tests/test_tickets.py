"""Zendesk and Jira connectors against local servers that speak their documented endpoints and assert the
exact requests; idempotent creation; signed webhooks (forged → 401/403, malformed → 400, duplicates once)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from integrations_fakes import FakeChat, FakeServer, Recorded, Service, ServiceFactory, assert_error_shape

Fake = Callable[[], Awaitable[FakeServer]]
ZD_EMAIL = "support-bot@acme.example"
ZD_TOKEN = "zd-api-token-0123456789"
ZD_SECRET = "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ=="
JIRA_TOKEN = "jira-api-token-abcdef"
JIRA_SECRET = "jira-webhook-secret-123"

TRANSCRIPT = [
    {"role": "user", "text": "Мой заказ A-1001 не пришёл", "at": "2026-11-24T10:00:00Z"},
    {
        "role": "assistant",
        "text": "It shipped on Nov 20.\nTracking: RU123456789",
        "at": "2026-11-24T10:00:05Z",
    },
]


class FakeZendesk:
    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.tickets: dict[int, dict[str, Any]] = {}
        self.by_key: dict[str, int] = {}
        self.delay = 0.0
        server.routes["POST /api/v2/tickets.json"] = self._create
        server.routes["PUT /api/v2/tickets/*"] = self._update
        server.routes["GET /api/v2/tickets/*"] = self._show

    async def _create(self, request: Recorded) -> web.StreamResponse:
        await asyncio.sleep(self.delay)
        key = request.headers["Idempotency-Key"]
        if key in self.by_key:
            ticket = self.tickets[self.by_key[key]]
            return web.json_response({"ticket": ticket}, status=201, headers={"x-idempotency-lookup": "hit"})
        ticket_id = 35436 + len(self.tickets)
        body = request.json()["ticket"]
        ticket = {
            "id": ticket_id,
            "url": f"{self.server.url}/api/v2/tickets/{ticket_id}.json",
            "subject": body["subject"],
            "status": "new",
            "priority": body["priority"],
            "requester_id": 20978392,
            "tags": body["tags"],
        }
        self.tickets[ticket_id] = ticket
        self.by_key[key] = ticket_id
        return web.json_response({"ticket": ticket, "audit": {"events": []}}, status=201)

    async def _update(self, request: Recorded) -> web.StreamResponse:
        ticket_id = int(request.path.rsplit("/", 1)[1].removesuffix(".json"))
        return web.json_response(
            {
                "ticket": self.tickets[ticket_id],
                "audit": {
                    "events": [
                        {
                            "id": 9000 + len(self.server.requests),
                            "type": "Comment",
                            "body": request.json()["ticket"]["comment"]["body"],
                        }
                    ]
                },
            }
        )

    async def _show(self, request: Recorded) -> web.StreamResponse:
        ticket_id = int(request.path.rsplit("/", 1)[1].removesuffix(".json"))
        if ticket_id not in self.tickets:
            return web.json_response({"error": "RecordNotFound"}, status=404)
        return web.json_response({"ticket": {**self.tickets[ticket_id], "status": "pending"}})


class FakeJira:
    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.count = 0
        server.routes["POST /rest/api/3/issue"] = self._create
        server.routes["POST /rest/api/3/issue/*"] = self._comment
        server.routes["GET /rest/api/3/issue/*"] = self._show

    async def _create(self, request: Recorded) -> web.StreamResponse:
        self.count += 1
        return web.json_response(
            {
                "id": str(10000 + self.count),
                "key": f"SUP-{23 + self.count}",
                "self": f"{self.server.url}/rest/api/3/issue/{10000 + self.count}",
            },
            status=201,
        )

    async def _comment(self, request: Recorded) -> web.StreamResponse:
        assert request.path.endswith("/comment")
        return web.json_response(
            {"id": "10010", "body": request.json()["body"], "author": {"accountId": "bot-account"}},
            status=201,
        )

    async def _show(self, request: Recorded) -> web.StreamResponse:
        return web.json_response(
            {
                "id": "10001",
                "key": request.path.rsplit("/", 1)[1],
                "fields": {"status": {"name": "In Progress", "statusCategory": {"key": "indeterminate"}}},
            }
        )


async def add_connector(service: Service, body: dict[str, Any]) -> str:
    response = await service.client.post("/internal/v1/connectors", json=body, headers=service.headers())
    assert response.status_code == 201, response.text
    connector_id: str = response.json()["id"]
    return connector_id


def zendesk_config(url: str) -> dict[str, Any]:
    return {
        "kind": "zendesk",
        "settings": {"base_url": url, "email": ZD_EMAIL, "tags": ["web"]},
        "secrets": {"api_token": ZD_TOKEN, "webhook_secret": ZD_SECRET},
    }


def jira_config(url: str) -> dict[str, Any]:
    return {
        "kind": "jira",
        "settings": {
            "base_url": url,
            "email": "bot@acme.example",
            "project_key": "SUP",
            "issue_type": "Support",
        },
        "secrets": {"api_token": JIRA_TOKEN, "webhook_secret": JIRA_SECRET},
    }


def ticket_request(key: str = "conv-1:ticket", system: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "conversation_id": "conv-1",
        "subject": "Заказ A-1001 не доставлен",
        "transcript": TRANSCRIPT,
        "requester": {"name": "Анна Петрова", "email": "anna.petrova@example.ru"},
        "priority": "high",
        "tags": ["delivery"],
        "idempotency_key": key,
    }
    if system:
        body["system"] = system
    return body


@pytest.mark.asyncio
async def test_zendesk_ticket_creation_is_exact_and_idempotent(
    fake: Fake, service_factory: ServiceFactory, database_url: str
) -> None:
    zendesk = FakeZendesk(await fake())
    service = await service_factory(database_url=database_url)
    await add_connector(service, zendesk_config(zendesk.server.url))
    zendesk.delay = 0.3
    first = await service.client.post(
        "/internal/v1/tickets", json=ticket_request(), headers=service.headers()
    )
    assert first.status_code == 201, first.text
    ticket = first.json()
    assert ticket["system"] == "zendesk" and ticket["external_id"] == "35436" and ticket["status"] == "new"
    assert ticket["url"] == f"{zendesk.server.url}/agent/tickets/35436"
    [request] = zendesk.server.calls("POST")
    assert (
        request.headers["Authorization"]
        == "Basic " + base64.b64encode(f"{ZD_EMAIL}/token:{ZD_TOKEN}".encode()).decode()
    )
    assert request.headers["Idempotency-Key"] == "switchboard:acme:conv-1:ticket"
    assert request.json() == {
        "ticket": {
            "subject": "Заказ A-1001 не доставлен",
            "comment": {
                "body": "Conversation transcript:\n\n"
                "Customer (2026-11-24 10:00 UTC): Мой заказ A-1001 не пришёл\n\n"
                "Assistant (2026-11-24 10:00 UTC): It shipped on Nov 20.\nTracking: RU123456789\n\n"
                "Switchboard conversation: conv-1",
                "public": True,
            },
            "priority": "high",
            "tags": ["delivery", "switchboard", "web"],
            "requester": {"name": "Анна Петрова", "email": "anna.petrova@example.ru"},
            "external_id": "conv-1",
        }
    }
    # A retried create with the same key returns the same ticket and never reaches Zendesk again.
    again = await service.client.post(
        "/internal/v1/tickets", json=ticket_request(), headers=service.headers()
    )
    assert again.status_code == 200 and again.json()["id"] == ticket["id"]
    assert len(zendesk.server.calls("POST")) == 1
    listed = await service.client.get(
        "/internal/v1/tickets", params={"conversation_id": "conv-1"}, headers=service.headers()
    )
    assert listed.json()["total"] == 1
    refreshed = await service.client.get(
        f"/internal/v1/tickets/{ticket['id']}", params={"refresh": "true"}, headers=service.headers()
    )
    assert refreshed.json()["status"] == "pending"
    assert zendesk.server.requests[-1].path == "/api/v2/tickets/35436.json"
    other = await service.client.get(f"/internal/v1/tickets/{ticket['id']}", headers=service.headers("other"))
    assert_error_shape(other, 404, "not_found")


@pytest.mark.asyncio
async def test_concurrent_creates_with_one_key_make_one_ticket(
    fake: Fake, service_factory: ServiceFactory
) -> None:
    zendesk = FakeZendesk(await fake())
    zendesk.delay = 0.5
    service = await service_factory()
    await add_connector(service, zendesk_config(zendesk.server.url))
    first = asyncio.create_task(
        service.client.post("/internal/v1/tickets", json=ticket_request("k-2"), headers=service.headers())
    )
    await asyncio.sleep(0.2)
    second = await service.client.post(
        "/internal/v1/tickets", json=ticket_request("k-2"), headers=service.headers()
    )
    assert_error_shape(second, 409, "conflict")
    assert (await first).status_code == 201
    assert len(zendesk.server.calls("POST")) == 1


@pytest.mark.asyncio
async def test_jira_issue_with_adf_transcript(fake: Fake, service_factory: ServiceFactory) -> None:
    jira = FakeJira(await fake())
    service = await service_factory()
    await add_connector(service, jira_config(jira.server.url))
    response = await service.client.post(
        "/internal/v1/tickets", json=ticket_request(system="jira"), headers=service.headers()
    )
    assert response.status_code == 201, response.text
    assert response.json()["external_id"] == "SUP-24"
    assert response.json()["url"] == f"{jira.server.url}/browse/SUP-24"
    [request] = jira.server.calls("POST")
    assert request.path == "/rest/api/3/issue"
    assert (
        request.headers["Authorization"]
        == "Basic " + base64.b64encode(f"bot@acme.example:{JIRA_TOKEN}".encode()).decode()
    )
    fields = request.json()["fields"]
    assert fields["project"] == {"key": "SUP"} and fields["issuetype"] == {"name": "Support"}
    assert fields["summary"] == "Заказ A-1001 не доставлен"
    assert fields["priority"] == {"name": "High"} and fields["labels"] == ["delivery", "switchboard"]
    assert fields["description"] == {
        "type": "doc",
        "version": 1,
        "content": [
            {
                "type": "heading",
                "attrs": {"level": 3},
                "content": [{"type": "text", "text": "Conversation transcript"}],
            },
            {
                "type": "paragraph",
                "content": [
                    {
                        "type": "text",
                        "text": "Customer (2026-11-24 10:00 UTC): ",
                        "marks": [{"type": "strong"}],
                    },
                    {"type": "text", "text": "Мой заказ A-1001 не пришёл"},
                ],
            },
            {
                "type": "paragraph",
                "content": [
                    {
                        "type": "text",
                        "text": "Assistant (2026-11-24 10:00 UTC): ",
                        "marks": [{"type": "strong"}],
                    },
                    {"type": "text", "text": "It shipped on Nov 20."},
                    {"type": "hardBreak"},
                    {"type": "text", "text": "Tracking: RU123456789"},
                ],
            },
            {"type": "paragraph", "content": [{"type": "text", "text": "Switchboard conversation: conv-1"}]},
        ],
    }
    assert request.json()["properties"][0]["value"]["idempotency_key"] == "switchboard:acme:conv-1:ticket"
    status = await service.client.get(
        f"/internal/v1/tickets/{response.json()['id']}?refresh=true", headers=service.headers()
    )
    assert status.json()["status"] == "in progress"
    assert jira.server.requests[-1].query == {"fields": "status"}


@pytest.mark.asyncio
async def test_no_connector_and_secrets_never_returned(fake: Fake, service_factory: ServiceFactory) -> None:
    service = await service_factory()
    missing = await service.client.post(
        "/internal/v1/tickets", json=ticket_request(), headers=service.headers()
    )
    assert_error_shape(missing, 404, "not_found")
    bad = await service.client.post(
        "/internal/v1/connectors",
        json={"kind": "zendesk", "settings": {"base_url": "ftp://x"}, "secrets": {}},
        headers=service.headers(),
    )
    error = assert_error_shape(bad, 422, "validation_error")
    assert ZD_TOKEN not in json.dumps(error)
    connector_id = await add_connector(service, zendesk_config("http://127.0.0.1:9"))
    listed = await service.client.get("/internal/v1/connectors", headers=service.headers())
    assert ZD_TOKEN not in listed.text and ZD_SECRET not in listed.text
    assert listed.json()[0]["secrets"] == {"api_token": "****6789", "webhook_secret": "****eQ=="}
    duplicate = await service.client.post(
        "/internal/v1/connectors", json=zendesk_config("http://x.example"), headers=service.headers()
    )
    assert_error_shape(duplicate, 409, "conflict")
    updated = await service.client.put(
        f"/internal/v1/connectors/{connector_id}",
        json={"secrets": {"webhook_secret": None}, "enabled": False},
        headers=service.headers(),
    )
    assert updated.json()["secrets"] == {"api_token": "****6789"} and updated.json()["enabled"] is False
    assert (
        await service.client.delete(f"/internal/v1/connectors/{connector_id}", headers=service.headers())
    ).status_code == 204


# --- webhooks back into the conversation ---


def zendesk_signed(
    service: Service, payload: dict[str, Any], *, secret: str = ZD_SECRET
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    timestamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    signature = base64.b64encode(
        hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    ).decode()
    return body, {
        "X-Internal-Token": service.headers()["X-Internal-Token"],
        "Content-Type": "application/json",
        "X-Zendesk-Webhook-Signature": signature,
        "X-Zendesk-Webhook-Signature-Timestamp": timestamp,
    }


def zendesk_comment_event(
    event_id: str, *, author_id: int = 1500, body: str = "Hi Anna, I've re-sent your parcel."
) -> dict[str, Any]:
    """Shape of a Zendesk ticket event webhook (``zen:event-type:ticket.comment_added``)."""
    return {
        "account_id": 22222,
        "detail": {
            "id": "35436",
            "status": "OPEN",
            "requester_id": "20978392",
            "subject": "Заказ A-1001 не доставлен",
        },
        "event": {
            "comment": {
                "id": f"c-{event_id}",
                "body": body,
                "is_public": True,
                "author": {"id": str(author_id), "is_staff": True, "name": "Olga Agent"},
            }
        },
        "id": event_id,
        "subject": "zen:ticket:35436",
        "time": "2026-11-24T10:30:00Z",
        "type": "zen:event-type:ticket.comment_added",
        "zendesk_event_version": "2022-11-06",
    }


def zendesk_status_event(event_id: str, status: str) -> dict[str, Any]:
    return {
        "account_id": 22222,
        "detail": {"id": "35436", "status": status},
        "event": {"current": status, "previous": "OPEN"},
        "id": event_id,
        "subject": "zen:ticket:35436",
        "time": "2026-11-24T10:40:00Z",
        "type": "zen:event-type:ticket.status_changed",
        "zendesk_event_version": "2022-11-06",
    }


async def start_web_handoff(service: Service) -> dict[str, Any]:
    response = await service.client.post(
        "/internal/v1/handoffs",
        json={
            "conversation_id": "conv-1",
            "channel": "web",
            "end_user_id": "u-1",
            "reason": "customer asked for a human",
            "transcript": TRANSCRIPT,
            "profile": {"name": "Анна Петрова", "email": "anna.petrova@example.ru"},
        },
        headers=service.headers(),
    )
    assert response.status_code == 201, response.text
    handoff: dict[str, Any] = response.json()
    return handoff


@pytest.mark.asyncio
async def test_zendesk_webhooks_flow_back_to_the_conversation(
    fake: Fake, chat: FakeChat, service_factory: ServiceFactory
) -> None:
    zendesk = FakeZendesk(await fake())
    service = await service_factory(chat_url=chat.server.url)
    connector_id = await add_connector(service, zendesk_config(zendesk.server.url))
    handoff = await start_web_handoff(service)
    assert handoff["ticket"]["external_id"] == "35436"
    hook = f"/internal/v1/channels/zendesk/{connector_id}"

    body, headers = zendesk_signed(service, zendesk_comment_event("evt-1"))
    response = await service.client.post(hook, content=body, headers=headers)
    assert response.json() == {"ok": True, "duplicate": False, "outcome": "reply"}
    [(conversation_id, message)] = chat.operator_messages
    assert conversation_id == "conv-1"
    assert (
        message.text == "Hi Anna, I've re-sent your parcel." and message.operator_id == "zendesk:Olga Agent"
    )
    again = await service.client.post(hook, content=body, headers=headers)
    assert again.json() == {"ok": True, "duplicate": True}
    assert len(chat.operator_messages) == 1

    # The customer's own comments (requester) are not echoed back to them.
    body, headers = zendesk_signed(service, zendesk_comment_event("evt-2", author_id=20978392, body="thanks"))
    assert (await service.client.post(hook, content=body, headers=headers)).json()["outcome"] == "ignored"

    forged_body, forged_headers = zendesk_signed(service, zendesk_comment_event("evt-3"), secret="wrong")
    assert_error_shape(
        await service.client.post(hook, content=forged_body, headers=forged_headers), 403, "forbidden"
    )
    forged_headers.pop("X-Zendesk-Webhook-Signature")
    assert_error_shape(
        await service.client.post(hook, content=forged_body, headers=forged_headers), 401, "unauthorized"
    )
    body, headers = zendesk_signed(service, {"hello": "world"})
    assert_error_shape(await service.client.post(hook, content=body, headers=headers), 400, "bad_request")

    body, headers = zendesk_signed(service, zendesk_status_event("evt-4", "SOLVED"))
    assert (await service.client.post(hook, content=body, headers=headers)).json()["outcome"] == "resolved"
    assert [c.status for c in chat.status_changes] == ["resolved"]
    detail = await service.client.get(f"/internal/v1/handoffs/{handoff['id']}", headers=service.headers())
    assert detail.json()["status"] == "resolved" and detail.json()["ticket"]["status"] == "solved"


def jira_signed(
    service: Service, payload: dict[str, Any], *, secret: str = JIRA_SECRET, identifier: str = "1"
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    return body, {
        "X-Internal-Token": service.headers()["X-Internal-Token"],
        "Content-Type": "application/json",
        "X-Hub-Signature": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
        "X-Atlassian-Webhook-Identifier": identifier,
    }


@pytest.mark.asyncio
async def test_jira_webhooks_flow_back_to_the_conversation(
    fake: Fake, chat: FakeChat, service_factory: ServiceFactory
) -> None:
    jira = FakeJira(await fake())
    service = await service_factory(chat_url=chat.server.url)
    connector_id = await add_connector(service, jira_config(jira.server.url))
    handoff = await start_web_handoff(service)
    assert handoff["ticket"]["external_id"] == "SUP-24"
    hook = f"/internal/v1/channels/jira/{connector_id}"
    comment = {
        "timestamp": int(time.time() * 1000),
        "webhookEvent": "comment_created",
        "comment": {
            "id": "10020",
            "author": {"accountId": "5b10ac8d82e05b22cc7d4ef5", "displayName": "Pavel Support"},
            "body": {
                "type": "doc",
                "version": 1,
                "content": [
                    {"type": "paragraph", "content": [{"type": "text", "text": "We refunded the order."}]}
                ],
            },
        },
        "issue": {"id": "10001", "key": "SUP-24", "fields": {"status": {"name": "In Progress"}}},
    }
    body, headers = jira_signed(service, comment, identifier="w-1")
    assert (await service.client.post(hook, content=body, headers=headers)).json()["outcome"] == "reply"
    assert chat.operator_messages[0][1].text == "We refunded the order."
    assert (await service.client.post(hook, content=body, headers=headers)).json()["duplicate"] is True
    body, headers = jira_signed(service, comment, secret="nope", identifier="w-2")
    assert_error_shape(await service.client.post(hook, content=body, headers=headers), 403, "forbidden")
    done = {
        "timestamp": int(time.time() * 1000) + 1,
        "webhookEvent": "jira:issue_updated",
        "issue": {
            "id": "10001",
            "key": "SUP-24",
            "fields": {"status": {"name": "Done", "statusCategory": {"key": "done"}}},
        },
        "changelog": {
            "id": "1",
            "items": [
                {"field": "status", "fieldtype": "jira", "fromString": "In Progress", "toString": "Done"}
            ],
        },
    }
    body, headers = jira_signed(service, done, identifier="w-3")
    assert (await service.client.post(hook, content=body, headers=headers)).json()["outcome"] == "resolved"
    assert len(chat.operator_messages) == 1
