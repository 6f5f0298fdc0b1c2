"""The learning loop across real processes: a question the bot could not answer goes to a human, the
operator's reply becomes a suggested curated answer when the operator resolves the conversation, suggestions
in two languages are merged and approved (edited) through the gateway, and the next customer asking in other
words, in the other language, gets the curated answer; nothing reaches customers before approval, and
another tenant sees none of it."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from switchboard_shared.contracts.chat import CuratedPacket, DonePacket, TokenPacket, decode_sse

from .conftest import Fleet, tenant_server_key, tenant_widget_key

pytestmark = pytest.mark.e2e
TENANT = "e2e-suggest"
OTHER_TENANT = "e2e-suggest-other"
ORIGIN = "https://shop.example"
REPLY_EN = "Not yet: we accept bank cards and SBP."
REPLY_RU = "Пока нет: принимаем банковские карты и СБП."
APPROVED = "We do not accept cryptocurrency yet: pay by bank card or SBP."
OUTBOX_TENANT = "e2e-suggest-outbox"
OUTBOX_REPLY = "We do not ship to Antarctica, sorry."


class Customer:
    def __init__(self, gateway: str, widget_key: str, visitor: str) -> None:
        headers = {"Authorization": f"Bearer {widget_key}", "Origin": ORIGIN, "X-Anonymous-ID": visitor}
        self.client = httpx.Client(base_url=gateway, headers=headers, timeout=90.0)
        created = self.client.post(
            "/v1/conversations", json={"end_user_id": f"anon:{visitor}", "channel": "web"}
        )
        assert created.status_code in (200, 201), created.text
        self.conversation_id: str = created.json()["id"]

    def ask(self, text: str) -> tuple[str, Any]:
        with self.client.stream(
            "POST",
            f"/v1/conversations/{self.conversation_id}/messages",
            json={"text": text},
            headers={"Accept": "text/event-stream"},
        ) as response:
            assert response.status_code == 200, response.read()
            packets = [p for p in decode_sse(list(response.iter_lines())) if p.type != "heartbeat"]
        done = packets[-1]
        assert isinstance(done, DonePacket), packets
        curated = next((p for p in packets if isinstance(p, CuratedPacket)), None)
        return "".join(p.text for p in packets if isinstance(p, TokenPacket)), curated


def _operator_answers(api: httpx.Client, conversation_id: str, reply: str, key: str) -> None:
    """Claim the conversation's handoff, reply to the customer, resolve it."""
    deadline = time.monotonic() + 30
    while True:
        items = api.get("/v1/handoffs", params={"limit": 100}).json()["items"]
        handoff = next((h for h in items if h["conversation_id"] == conversation_id), None)
        if handoff is not None or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert handoff is not None, items
    operator = {"operator_id": "op-1"}
    assert api.post(f"/v1/handoffs/{handoff['id']}/claim", json=operator).status_code == 200
    sent = api.post(
        f"/v1/handoffs/{handoff['id']}/reply", json={"text": reply, **operator, "idempotency_key": key}
    )
    assert sent.status_code in (200, 201), sent.text
    resolved = api.post(f"/v1/handoffs/{handoff['id']}/resolve", json=operator)
    assert resolved.status_code == 200, resolved.text


def _pending(api: httpx.Client, count: int, seconds: float = 30) -> list[dict[str, Any]]:
    deadline = time.monotonic() + seconds
    while True:
        listed = api.get("/v1/curated/suggestions")
        groups: list[dict[str, Any]] = listed.json()["items"] if listed.status_code == 200 else []
        if len(groups) >= count or time.monotonic() > deadline:
            return groups
        time.sleep(0.2)


def test_an_operators_reply_becomes_a_curated_answer_once_approved(fleet: Fleet) -> None:
    fleet.require("chat", "retrieval", "integrations")
    gateway = fleet.gateway
    server = {"Authorization": f"Bearer {tenant_server_key(gateway, TENANT)}"}
    other = {"Authorization": f"Bearer {tenant_server_key(gateway, OTHER_TENANT)}"}
    widget_key = tenant_widget_key(gateway, TENANT, ORIGIN)

    english = Customer(gateway, widget_key, "suggest-en")
    refused, _ = english.ask("Can I pay for my order with cryptocurrency?")
    assert "could not find" in refused, refused  # the knowledge base says nothing about it
    english.ask("I want to talk to a human")
    russian = Customer(gateway, widget_key, "suggest-ru")
    russian.ask("Можно ли оплатить заказ криптовалютой?")
    russian.ask("Позовите оператора")

    with httpx.Client(base_url=gateway, headers=server, timeout=60.0) as api:
        _operator_answers(api, english.conversation_id, REPLY_EN, "suggest-en-1")
        _operator_answers(api, russian.conversation_id, REPLY_RU, "suggest-ru-1")
        groups = _pending(api, 2)
        by_language = {g["language"]: g for g in groups}
        assert set(by_language) == {"en", "ru"}, groups
        en, ru = by_language["en"], by_language["ru"]
        assert (en["question"], en["answer"], en["customers"]) == (
            "Can I pay for my order with cryptocurrency?",
            REPLY_EN,
            1,
        )
        assert en["suggestions"][0]["reason"] == "no_answer"
        assert en["suggestions"][0]["conversation_id"] == english.conversation_id
        assert (ru["question"], ru["answer"]) == ("Можно ли оплатить заказ криптовалютой?", REPLY_RU)
        # Requests for a human are not questions: nothing else was suggested.
        assert len(groups) == 2, groups
        # Another tenant sees none of it, and a widget key cannot reach it.
        assert api.get("/v1/curated/suggestions", headers=other).json()["total"] == 0
        widget = {"Authorization": f"Bearer {widget_key}", "Origin": ORIGIN, "X-Anonymous-ID": "suggest-en"}
        assert api.get("/v1/curated/suggestions", headers=widget).status_code == 403

    # Before approval, a customer asking again still gets no curated answer.
    _, curated = Customer(gateway, widget_key, "suggest-before").ask("Can I pay with cryptocurrency?")
    assert curated is None

    with httpx.Client(base_url=gateway, headers=server, timeout=60.0) as api:
        merged = api.post(f"/v1/curated/suggestions/{ru['id']}/merge", json={"into": en["id"]})
        assert merged.status_code == 200 and merged.json()["customers"] == 2, merged.text
        bad = api.post(
            f"/v1/curated/suggestions/{en['id']}/approve", json={"question": "", "answer": APPROVED}
        )
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_error"
        approved = api.post(
            f"/v1/curated/suggestions/{en['id']}/approve",
            json={"question": "Do you accept cryptocurrency?", "answer": APPROVED, "language": "en"},
        )
        assert approved.status_code == 201, approved.text
        entry = approved.json()["answer"]
        assert "Можно ли оплатить заказ криптовалютой?" in entry["variants"]
        assert api.get("/v1/curated/suggestions").json()["total"] == 0

    for visitor, question in (
        ("suggest-after-en", "Do you take cryptocurrency?"),
        ("suggest-after-ru", "Можно ли расплатиться криптовалютой за заказ?"),
    ):
        text, curated = Customer(gateway, widget_key, visitor).ask(question)
        assert curated is not None and curated.answer_id == entry["id"], (question, text)
        assert text == APPROVED


def test_a_suggestion_made_while_retrieval_is_down_arrives_once_retrieval_is_back(fleet: Fleet) -> None:
    """The resolution does not depend on retrieval; what the operator answered waits in chat's outbox and
    reaches retrieval when it is back (chat retries every CHAT_SUGGESTION_RETRY_SECONDS, doubling)."""
    fleet.require("chat", "retrieval", "integrations")
    gateway = fleet.gateway
    server = {"Authorization": f"Bearer {tenant_server_key(gateway, OUTBOX_TENANT)}"}
    customer = Customer(gateway, tenant_widget_key(gateway, OUTBOX_TENANT, ORIGIN), "outbox-en")
    customer.ask("Do you ship to Antarctica?")
    customer.ask("I want to talk to a human")
    retrieval = fleet.processes["retrieval"]
    with httpx.Client(base_url=gateway, headers=server, timeout=60.0) as api:
        retrieval.stop()
        try:
            _operator_answers(api, customer.conversation_id, OUTBOX_REPLY, "outbox-1")
            deadline = time.monotonic() + 30  # chat's attempt fails and is scheduled again
            while "curated_suggestions_retry" not in fleet.logs("chat") and time.monotonic() < deadline:
                time.sleep(0.2)
            assert "curated_suggestions_retry" in fleet.logs("chat")
        finally:
            retrieval.start()
        groups = _pending(api, 1, seconds=60)
        assert [(g["question"], g["answer"]) for g in groups] == [
            ("Do you ship to Antarctica?", OUTBOX_REPLY)
        ]
        assert groups[0]["suggestions"][0]["conversation_id"] == customer.conversation_id
