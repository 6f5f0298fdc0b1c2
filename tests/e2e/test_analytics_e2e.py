"""Analytics end to end: a real conversation through the gateway shows up in the tenant's reports.

Chat, retrieval and the gateway emit their events through the shared buffered client; analytics stores
them and maintains its rollups; the reports read through the gateway's public `/v1/analytics/...` routes.
A fresh tenant keeps the numbers exact whatever the other end-to-end tests do to the demo tenant.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from .conftest import Fleet, ingest_article, tenant_server_key

pytestmark = pytest.mark.e2e
TENANT = "e2e-analytics"
SHIPPING = (
    "# Shipping\n\nStandard shipping takes three to five business days within the country. "
    "Express shipping arrives the next business day when ordered before noon.\n"
)


def _eventually(
    read: Callable[[], dict[str, Any]], ready: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """Events are batched and flushed on an interval: poll the report until it shows them (bounded)."""
    deadline = time.monotonic() + 30
    report = read()
    while not ready(report) and time.monotonic() < deadline:
        time.sleep(0.5)
        report = read()
    return report


def test_a_conversation_shows_up_in_the_reports(fleet: Fleet) -> None:
    fleet.require("chat", "retrieval", "analytics")
    client = httpx.Client(
        base_url=fleet.gateway,
        headers={
            "Authorization": f"Bearer {tenant_server_key(fleet.gateway, TENANT)}",
            "X-End-User-ID": "analytics-customer",
        },
        timeout=60.0,
    )
    with client:
        ingest_article(client, "shipping.md", SHIPPING)

        conversation = client.post("/v1/conversations", json={"end_user_id": "analytics-customer"})
        assert conversation.status_code == 201, conversation.text
        cid = conversation.json()["id"]
        answered = client.post(
            f"/v1/conversations/{cid}/messages", json={"text": "How long does shipping take?"}
        )
        assert answered.status_code == 200, answered.text
        reply = answered.json()["reply"]
        assert reply["citations"], reply
        cited_document = reply["citations"][0]["document_id"]
        feedback = client.post(
            f"/v1/conversations/{cid}/feedback", json={"message_id": reply["id"], "rating": "down"}
        )
        assert feedback.status_code == 204, feedback.text
        unanswered = client.post(
            f"/v1/conversations/{cid}/messages", json={"text": "Do you rent out hot air balloons?"}
        )
        assert unanswered.status_code == 200, unanswered.text
        assert unanswered.json()["reply"]["no_answer"], unanswered.json()["reply"]

        operator = {"Authorization": client.headers["Authorization"]}
        today = datetime.now(UTC).date()
        period = {"start": (today - timedelta(days=1)).isoformat(), "end": today.isoformat(), "tz": "UTC"}

        def report(name: str) -> dict[str, Any]:
            # Reports are for operators: the same server key, without acting for an end user.
            response = httpx.get(
                f"{fleet.gateway}/v1/analytics/{name}", params=period, headers=operator, timeout=30
            )
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            return body

        overview = _eventually(
            lambda: report("overview"),
            lambda r: r["volume"]["answers"] >= 2 and r["satisfaction"]["thumbs_down"] >= 1,
        )
        volume = overview["volume"]
        assert (volume["conversations"], volume["customer_messages"], volume["answers"]) == (1, 2, 2), volume
        assert overview["satisfaction"]["thumbs_down"] == 1 and overview["satisfaction"]["thumbs_up"] == 0
        assert overview["providers"]["answers_by_provider"] == {"extractive": 2}, overview["providers"]
        assert overview["latency"]["total"]["count"] == 2 and overview["latency"]["total"]["p50_ms"] > 0
        assert overview["resolution"]["engaged"] == 1 and overview["resolution"]["answered"] == 1

        gaps = _eventually(lambda: report("unanswered"), lambda r: r["no_answer_turns"] >= 1)
        assert gaps["no_answer_turns"] == 1, gaps
        assert "balloons" in gaps["questions"][0]["question"], gaps["questions"]

        documents = _eventually(lambda: report("documents"), lambda r: bool(r["most_cited_in_negative"]))
        assert [d["document_id"] for d in documents["top_cited"]] == [cited_document], documents
        assert documents["most_cited_in_negative"][0] == {
            "document_id": cited_document,
            "cited": 1,
            "cited_in_negative": 1,
        }, documents

        # Content gaps, per knowledge base: the refused question and the rated-down one with its document.
        kb_id = httpx.get(f"{fleet.gateway}/v1/kbs", headers=operator, timeout=30).json()["items"][0]["id"]
        content = _eventually(
            lambda: report("content-gaps"),
            lambda r: sum(kb["refused"] + kb["rated_down"] for kb in r["knowledge_bases"]) >= 2,
        )
        assert [kb["kb_id"] for kb in content["knowledge_bases"]] == [kb_id], content
        kb = content["knowledge_bases"][0]
        assert (kb["refused"], kb["rated_down"]) == (1, 1), kb
        by_question = {gap["question"]: gap for gap in kb["gaps"]}
        shipping = by_question["how long does shipping take"]
        assert (shipping["rated_down"], shipping["documents"]) == (
            1,
            [{"document_id": cited_document, "rated_down": 1}],
        ), shipping
        balloons = by_question["do you rent out hot air balloons"]
        assert (balloons["refused"], balloons["documents"]) == (1, []), balloons
