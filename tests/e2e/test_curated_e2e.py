"""Curated answers across real processes: a tenant's server key keeps question -> answer pairs through the
gateway; its customers asking in other words get the curated answer in their language (marked curated in
the stream, with no provider), counted per entry; another tenant neither sees the entries nor gets their
answers; a widget key cannot manage them; bad input is a clear 4xx."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from switchboard_cli.main import app
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


def test_switchboard_eval_counts_curated_wordings_that_no_longer_reach_their_answer(
    fleet: Fleet, tmp_path: Path
) -> None:
    """`switchboard eval --curated` asks every wording of the tenant's curated answers with its live assistant
    settings: all reach their entry, until the assistant stops searching the knowledge base one is tied to."""
    fleet.require("chat", "retrieval")
    tenant = "e2e-curated-eval"
    key = tenant_server_key(fleet.gateway, tenant)
    with httpx.Client(base_url=fleet.gateway, headers={"Authorization": f"Bearer {key}"}, timeout=60) as api:
        shop, other = (api.post("/v1/kbs", json={"name": name}).json()["id"] for name in ("shop", "other"))
        tied = api.post("/v1/curated", json={**WARRANTY_EN, "kb_id": shop})
        assert tied.status_code == 201, tied.text
        assert api.post("/v1/curated", json=WARRANTY_RU).status_code == 201
        assistant = api.get("/v1/assistant").json()
        assert api.put("/v1/assistant", json={**assistant, "kb_ids": [shop]}).status_code == 200

        def evaluate(name: str) -> dict[str, Any]:
            out = tmp_path / f"{name}.json"
            args = ["eval", "--gateway", fleet.gateway, "--key", key, "--curated", "--json", str(out)]
            result = CliRunner().invoke(app, args)
            assert result.exit_code == 0, result.output
            report: dict[str, Any] = json.loads(out.read_text())["curated"]
            return report

        before = evaluate("before")
        assert (before["entries"], before["wordings"], before["matched"], before["missed"]) == (2, 3, 3, 0)
        assert api.put("/v1/assistant", json={**assistant, "kb_ids": [other]}).status_code == 200
        after = evaluate("after")
        assert (after["wordings"], after["matched"], after["missed"]) == (3, 1, 2), after
        assert {m["wording"] for m in after["not_matched"]} == {
            WARRANTY_EN["question"],
            *WARRANTY_EN["variants"],
        }
        assert all(m["entry_id"] == tied.json()["id"] for m in after["not_matched"])
