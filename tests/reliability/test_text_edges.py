"""Unicode and size edges on every text input through the gateway: NUL, lone surrogates, RTL and
bidirectional override marks, stacked combining characters, emoji in Russian text, control characters,
noncharacters and 100k-character texts. Each is either stored (and a customer message answered) or
refused with a 4xx in the one error shape, never a 5xx; and an accepted customer message is never lost
from analytics (its ``message_received`` and ``answer_sent`` events arrive)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from .fleet import OPERATOR_TOKEN, ReliabilityFleet, make_tenant, retrying

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]

ORIGIN = "https://shop.example"
WIDGET_CONVERSATION = {"channel": "web", "end_user_id": "anon:edge-widget-1"}
EDGES: dict[str, str] = {
    "nul": "Where is my order\u0000 B-2001?",
    "lone surrogate": "Where is my order \ud83d B-2001?",
    "reversed surrogates": "Доставка \udc00\ud800 сколько дней?",
    "rtl marks": "\u202eredro ym si erehW\u202c \u200fمتى يصل طلبي؟\u200e shipping?",
    "combining": "Ско\u0301лько дне\u0306й доставка? Z\u0351\u0352\u0353\u0354\u0355\u0356\u0357\u0358\u0359a\u0300\u0301\u0302",
    "emoji in russian": "Привет 👋🏽! Сколько идёт доставка 🚚📦? Спасибо 🙏🏻 👨‍👩‍👧‍👦",
    "controls": "\ufeffshipping\u0007 time\u001b[31m please\u0085\u2028next line",
    "noncharacters": "shipping \uffff\ufffe\U0010ffff time",
    "100k characters": ("Сколько идёт доставка? How long is shipping? " * 2300)[:100_000],
}


def body_bytes(payload: dict[str, Any]) -> bytes:
    """JSON as a client sends it: lone surrogates travel as (valid) ``\\udXXX`` escapes."""
    return json.dumps(payload, ensure_ascii=True).encode()


def send(
    client: httpx.Client, method: str, path: str, payload: dict[str, Any], **headers: str
) -> httpx.Response:
    return client.request(
        method, path, content=body_bytes(payload), headers={"content-type": "application/json", **headers}
    )


def assert_stored_or_refused(response: httpx.Response, what: str) -> bool:
    """True when accepted; a refusal must be a 4xx in the one error shape."""
    assert response.status_code < 500, (what, response.status_code, response.text[:400])
    if response.status_code < 300:
        return True
    assert 400 <= response.status_code < 500, (what, response.status_code, response.text[:400])
    error = response.json()["error"]
    assert error["code"] and error["message"] and error["request_id"], (what, response.text[:400])
    return False


@pytest.fixture(scope="module")
def tenant(fleet: ReliabilityFleet) -> dict[str, str]:
    keys = make_tenant(fleet.gateway, "text-edges")
    operator = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    limits = {"end_user_requests_per_minute": 0, "daily_message_budget": -1, "daily_token_budget": -1}
    httpx.patch(f"{fleet.gateway}/v1/admin/tenants/text-edges", json=limits, headers=operator, timeout=10)
    return keys


@pytest.fixture
def server(fleet: ReliabilityFleet, tenant: dict[str, str]) -> Any:
    headers = {"Authorization": f"Bearer {tenant['server_key']}", "X-End-User-ID": "edge-customer"}
    with httpx.Client(base_url=fleet.gateway, headers=headers, timeout=60) as client:
        yield client


@pytest.fixture
def widget(fleet: ReliabilityFleet, tenant: dict[str, str]) -> Any:
    headers = {
        "Authorization": f"Bearer {tenant['widget_key']}",
        "Origin": ORIGIN,
        "X-Anonymous-ID": "edge-widget-1",
    }
    with httpx.Client(base_url=fleet.gateway, headers=headers, timeout=60) as client:
        yield client


def analytics_events(fleet: ReliabilityFleet, conversation_id: str, wanted: set[str]) -> set[str]:
    """The event types analytics stored for a conversation, waiting for the batches to arrive."""
    deadline = time.monotonic() + 20
    seen: set[str] = set()
    while time.monotonic() < deadline:
        rows = fleet.db(
            "analytics",
            "SELECT type FROM analytics_events WHERE tenant_id = $1 AND conversation_id = $2",
            "text-edges",
            conversation_id,
        )
        seen = {row["type"] for row in rows}
        if wanted <= seen:
            break
        time.sleep(0.5)
    return seen


@pytest.mark.parametrize("edge", list(EDGES))
def test_a_customer_message(fleet: ReliabilityFleet, widget: httpx.Client, edge: str) -> None:
    created = retrying(widget, "POST", "/v1/conversations", json=WIDGET_CONVERSATION)
    assert created.status_code == 201, created.text
    conversation = created.json()["id"]
    turn = send(widget, "POST", f"/v1/conversations/{conversation}/messages", {"text": EDGES[edge]})
    if not assert_stored_or_refused(turn, edge):
        return
    result = turn.json()
    assert result["reply"] and result["reply"]["text"], result
    stored = widget.get(f"/v1/conversations/{conversation}")
    assert stored.status_code == 200, stored.text
    texts = [m["text"] for m in stored.json()["messages"] if m["role"] == "user"]
    assert len(texts) == 1 and texts[0], texts
    wanted = {"message_received", "answer_sent"}
    assert wanted <= analytics_events(fleet, conversation, wanted), edge


@pytest.mark.parametrize("edge", list(EDGES))
def test_the_other_text_inputs(
    fleet: ReliabilityFleet, server: httpx.Client, widget: httpx.Client, edge: str
) -> None:
    text = EDGES[edge]
    short = text[:1900]
    conversation = retrying(widget, "POST", "/v1/conversations", json=WIDGET_CONVERSATION).json()["id"]
    turn = widget.post(f"/v1/conversations/{conversation}/messages", json={"text": "How long is shipping?"})
    assert turn.status_code == 200, turn.text
    message_id = turn.json()["reply"]["id"]
    calls: list[tuple[httpx.Client, str, str, dict[str, Any]]] = [
        (
            widget,
            "POST",
            f"/v1/conversations/{conversation}/feedback",
            {"message_id": message_id, "rating": "down", "comment": short},
        ),
        (widget, "POST", f"/v1/conversations/{conversation}/csat", {"score": 2, "comment": short}),
        (server, "POST", "/v1/search", {"query": text}),
        (server, "POST", "/v1/kbs", {"name": short[:100], "description": short}),
        (
            server,
            "POST",
            "/v1/tickets",
            {"subject": short[:150], "description": text, "idempotency_key": f"edge-{edge}"},
        ),
        (
            server,
            "POST",
            "/v1/conversations",
            {"end_user_id": "edge-customer", "metadata": {"note": text}, "external_key": short[:150]},
        ),
        (
            server,
            "POST",
            "/v1/chat/completions",
            {"model": "switchboard", "messages": [{"role": "user", "content": text}]},
        ),
        (widget, "POST", f"/v1/conversations/{conversation}/handoff", {"reason": short}),
        (
            server,
            "POST",
            f"/v1/conversations/{conversation}/operator-messages",
            {"text": text, "operator_id": "op-1"},
        ),
        (server, "PUT", "/v1/assistant", {"greeting": short}),
    ]
    for client, method, path, payload in calls:
        assert_stored_or_refused(send(client, method, path, payload), f"{method} {path}")
    operator = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    tenant = httpx.post(
        f"{fleet.gateway}/v1/admin/tenants",
        content=body_bytes({"id": f"edge-{abs(hash(edge)) % 10**6}", "name": short[:100]}),
        headers={**operator, "content-type": "application/json"},
        timeout=30,
    )
    assert_stored_or_refused(tenant, "POST /v1/admin/tenants")
