"""Curated answers across real processes: a tenant's server key keeps question -> answer pairs through the
gateway; its customers asking in other words get the curated answer in their language (marked curated in
the stream, with no provider), counted per entry; another tenant neither sees the entries nor gets their
answers; a widget key cannot manage them; bad input is a clear 4xx."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from switchboard_shared.contracts.chat import CuratedPacket, DonePacket, TokenPacket, decode_sse

from .conftest import Fleet, tenant_server_key, tenant_widget_key

pytestmark = pytest.mark.e2e
TENANT = "e2e-curated"
OTHER_TENANT = "e2e-curated-other"
ORIGIN = "https://shop.example"
WARRANTY_EN = {
    "question": "How long is the warranty on a kettle?",
    "variants": ["What warranty do kettles have?"],
    "answer": "Every kettle has a two-year warranty from the day of purchase.",
    "language": "en",
    "tags": ["warranty"],
}
WARRANTY_RU = {
    "question": "Какая гарантия на чайник?",
    "answer": "На каждый чайник действует гарантия два года со дня покупки.",
    "language": "ru",
}


def _ask(gateway: str, widget_key: str, question: str, visitor: str) -> list[Any]:
    """The packets of one customer message sent through the widget's streaming route."""
    headers = {"Authorization": f"Bearer {widget_key}", "Origin": ORIGIN, "X-Anonymous-ID": visitor}
    with httpx.Client(base_url=gateway, headers=headers, timeout=90.0) as client:
        created = client.post("/v1/conversations", json={"end_user_id": f"anon:{visitor}", "channel": "web"})
        assert created.status_code in (200, 201), created.text
        with client.stream(
            "POST",
            f"/v1/conversations/{created.json()['id']}/messages",
            json={"text": question},
            headers={"Accept": "text/event-stream"},
        ) as response:
            assert response.status_code == 200, response.read()
            lines = list(response.iter_lines())
    return [packet for packet in decode_sse(lines) if packet.type != "heartbeat"]


def _reply(packets: list[Any]) -> tuple[str, str | None, CuratedPacket | None]:
    done = packets[-1]
    assert isinstance(done, DonePacket) and done.result.reply is not None
    text = "".join(p.text for p in packets if isinstance(p, TokenPacket))
    curated = next((p for p in packets if isinstance(p, CuratedPacket)), None)
    return text, done.result.reply.provider, curated


def test_curated_answers_reach_their_tenants_customers_only(fleet: Fleet) -> None:
    fleet.require("chat", "retrieval")
    gateway = fleet.gateway
    server = {"Authorization": f"Bearer {tenant_server_key(gateway, TENANT)}"}
    other = {"Authorization": f"Bearer {tenant_server_key(gateway, OTHER_TENANT)}"}
    widget_key = tenant_widget_key(gateway, TENANT, ORIGIN)
    other_widget_key = tenant_widget_key(gateway, OTHER_TENANT, ORIGIN)

    with httpx.Client(base_url=gateway, timeout=60.0) as client:
        english = client.post("/v1/curated", json=WARRANTY_EN, headers=server)
        assert english.status_code == 201, english.text
        russian = client.post("/v1/curated", json=WARRANTY_RU, headers=server)
        assert russian.status_code == 201, russian.text
        english_id, russian_id = english.json()["id"], russian.json()["id"]

        duplicate = client.post("/v1/curated", json={**WARRANTY_EN, "variants": []}, headers=server)
        assert duplicate.status_code == 409 and duplicate.json()["error"]["code"] == "conflict"
        empty = client.post(
            "/v1/curated", json={"question": "Do you sell kettles?", "answer": ""}, headers=server
        )
        assert empty.status_code == 422
        unknown = client.post(
            "/v1/curated",
            json={"question": "Do you sell kettles?", "answer": "Yes.", "language": "qq"},
            headers=server,
        )
        assert unknown.status_code == 422 and "unknown language" in unknown.text
        # A widget key (public, in a browser) cannot manage curated answers.
        widget = {
            "Authorization": f"Bearer {widget_key}",
            "Origin": ORIGIN,
            "X-Anonymous-ID": "curated-visitor",
        }
        assert client.get("/v1/curated", headers=widget).status_code == 403
        # The other tenant sees none of them.
        assert client.get("/v1/curated", headers=other).json()["total"] == 0
        assert client.get(f"/v1/curated/{english_id}", headers=other).status_code == 404
        assert client.delete(f"/v1/curated/{english_id}", headers=other).status_code == 404
        # A dry run shows what a message would get, without counting it.
        dry = client.post(
            "/v1/curated/match", json={"query": "What warranty does a kettle have?"}, headers=server
        )
        assert dry.status_code == 200 and dry.json()["match"]["answer_id"] == english_id

    text, provider, packet = _reply(
        _ask(gateway, widget_key, "How long is the warranty on the kettle?", "curated-visitor-en")
    )
    assert (text, provider) == (WARRANTY_EN["answer"], "curated")
    assert packet is not None and packet.answer_id == english_id and packet.language == "en"
    text, provider, packet = _reply(
        _ask(gateway, widget_key, "Какая гарантия у чайника?", "curated-visitor-ru")
    )
    assert (text, provider) == (WARRANTY_RU["answer"], "curated")
    assert packet is not None and packet.answer_id == russian_id

    # The other tenant's customer asking the same gets no curated answer.
    text, provider, packet = _reply(
        _ask(gateway, other_widget_key, "How long is the warranty on the kettle?", "curated-visitor-other")
    )
    assert packet is None and provider != "curated" and text != WARRANTY_EN["answer"]

    with httpx.Client(base_url=gateway, timeout=60.0) as client:
        listed = {e["id"]: e for e in client.get("/v1/curated", headers=server).json()["items"]}
    assert listed[english_id]["hit_count"] == 1 and listed[english_id]["last_hit_at"] is not None
    assert listed[russian_id]["hit_count"] == 1
