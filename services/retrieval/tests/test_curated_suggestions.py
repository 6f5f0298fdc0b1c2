"""Suggested curated answers: operators' replies to questions the bot could not answer, grouped by meaning
(as close as a curated match must be), ranked by how many customers asked, approved (edited) into a curated
answer whose variants are the other customers' wordings, dismissed or merged, per tenant only."""

from __future__ import annotations

from typing import Any

import pytest

OTHER = {"X-Tenant-ID": "globex"}
BASE = "/internal/v1/curated/suggestions"


async def suggest(
    svc: Any, conversation: str, question: str, answer: str, expect: int = 201
) -> dict[str, Any]:
    response = await svc.client.post(
        BASE,
        json={"question": question, "answer": answer, "conversation_id": conversation, "reason": "handoff"},
    )
    assert response.status_code == expect, response.text
    body: dict[str, Any] = response.json()
    return body


async def groups(svc: Any, status: str = "pending", **headers: str) -> list[dict[str, Any]]:
    response = await svc.client.get(BASE, params={"status": status}, headers=headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


@pytest.mark.asyncio
async def test_suggestions_are_grouped_ranked_and_approved_into_a_curated_answer(
    sqlite_service_with: Any,
) -> None:
    async with sqlite_service_with(default_embedding_model="use-multilingual") as svc:
        first = await suggest(svc, "c1", "Can I pay with cryptocurrency?", "Not yet, sorry.")
        second = await suggest(svc, "c2", "Is it possible to pay with crypto?", "No: cards and SBP only.")
        russian = await suggest(svc, "c3", "Можно ли оплатить криптовалютой?", "Нет, только картой или СБП.")
        password = await suggest(svc, "c4", "How do I reset my password?", "Use Forgot password.")
        # The same question of the same conversation again: one suggestion, the operator's latest reply.
        again = await suggest(
            svc, "c1", "can I pay with cryptocurrency", "No: cards and SBP only.", expect=200
        )
        assert again["id"] == first["id"] and again["answer"] == "No: cards and SBP only."
        assert russian["language"] == "ru" and first["language"] == "en"

        pending = await groups(svc)
        assert [g["customers"] for g in pending] == [2, 1, 1]
        crypto = pending[0]
        assert crypto["id"] == first["id"] and crypto["question"] == "Can I pay with cryptocurrency?"
        assert {s["id"] for s in crypto["suggestions"]} == {first["id"], second["id"]}
        assert crypto["status"] == "pending" and crypto["curated_answer_id"] is None
        # A question and its translation are further apart than a curated match allows: an operator merges.
        assert {g["id"] for g in pending[1:]} == {russian["id"], password["id"]}
        merged = await svc.client.post(f"{BASE}/{russian['id']}/merge", json={"into": crypto["id"]})
        assert merged.status_code == 200, merged.text
        assert merged.json()["id"] == crypto["id"] and merged.json()["customers"] == 3

        approved = await svc.client.post(
            f"{BASE}/{crypto['id']}/approve",
            json={
                "question": "Do you accept cryptocurrency?",
                "answer": "Not at the moment: we accept bank cards and SBP.",
                "language": "en",
                "tags": ["payments"],
            },
        )
        assert approved.status_code == 201, approved.text
        entry = approved.json()["answer"]
        assert entry["question"] == "Do you accept cryptocurrency?" and entry["tags"] == ["payments"]
        assert sorted(entry["variants"]) == sorted(
            [
                "Can I pay with cryptocurrency?",
                "Is it possible to pay with crypto?",
                "Можно ли оплатить криптовалютой?",
            ]
        )
        assert approved.json()["group"]["status"] == "approved"
        assert approved.json()["group"]["curated_answer_id"] == entry["id"]

        # The next customers, in other words and in the other language, get the curated answer.
        for query in ("Do you take cryptocurrency?", "Можно ли расплатиться криптовалютой?"):
            found = await svc.client.post("/internal/v1/search", json={"query": query, "curated": True})
            assert found.status_code == 200, found.text
            assert found.json()["curated"]["answer_id"] == entry["id"], (query, found.json()["curated"])

        # Decided groups leave the pending list and cannot be decided again.
        again_approved = await svc.client.post(
            f"{BASE}/{crypto['id']}/approve", json={"question": "Crypto?", "answer": "No."}
        )
        assert again_approved.status_code == 409, again_approved.text
        dismissed = await svc.client.post(f"{BASE}/{password['id']}/dismiss")
        assert dismissed.status_code == 200 and dismissed.json()["status"] == "dismissed"
        assert await groups(svc) == []
        assert [g["id"] for g in await groups(svc, "approved")] == [crypto["id"]]
        assert [g["id"] for g in await groups(svc, "dismissed")] == [password["id"]]
        # A later customer's question starts a new pending group.
        late = await suggest(svc, "c5", "Do you take cryptocurrency?", "No.")
        assert [g["id"] for g in await groups(svc)] == [late["id"]]


@pytest.mark.asyncio
async def test_suggestions_stay_with_their_tenant_and_bad_input_is_refused(sqlite_service_with: Any) -> None:
    async with sqlite_service_with(default_embedding_model="use-multilingual") as svc:
        mine = await suggest(svc, "c1", "Can I pay with cryptocurrency?", "No.")
        assert await groups(svc, **OTHER) == []
        for path, body in (
            (f"{BASE}/{mine['id']}/approve", {"question": "Crypto?", "answer": "No."}),
            (f"{BASE}/{mine['id']}/dismiss", None),
        ):
            response = await svc.client.post(path, json=body, headers=OTHER)
            assert response.status_code == 404, response.text
            assert response.json()["error"]["code"] == "not_found"
        assert (await svc.client.get(f"{BASE}/{mine['id']}", headers=OTHER)).status_code == 404
        # The other tenant's own suggestion does not join this tenant's group.
        theirs = await svc.client.post(
            BASE,
            json={
                "question": "Can I pay with cryptocurrency?",
                "answer": "Yes!",
                "conversation_id": "c1",
                "reason": "no_answer",
            },
            headers=OTHER,
        )
        assert theirs.status_code == 201 and theirs.json()["id"] != mine["id"]
        assert [g["customers"] for g in await groups(svc)] == [1]
        merged = await svc.client.post(f"{BASE}/{mine['id']}/merge", json={"into": theirs.json()["id"]})
        assert merged.status_code == 404, merged.text

        bad = [
            {"question": "Crypto?", "answer": "  ", "conversation_id": "c9", "reason": "handoff"},
            {"question": "", "answer": "No.", "conversation_id": "c9", "reason": "handoff"},
            {"question": "Crypto?", "answer": "No.", "conversation_id": "c9", "reason": "bored"},
            {
                "question": "Crypto?",
                "answer": "No.",
                "conversation_id": "c9",
                "reason": "handoff",
                "language": "xx",
            },
            {"question": "Crypto?", "answer": "No.", "reason": "handoff"},
        ]
        for body in bad:
            response = await svc.client.post(BASE, json=body)
            assert response.status_code == 422, (body, response.text)
            assert response.json()["error"]["code"] == "validation_error"
        itself = await svc.client.post(f"{BASE}/{mine['id']}/merge", json={"into": mine["id"]})
        assert itself.status_code == 422, itself.text
        empty = await svc.client.post(
            f"{BASE}/{mine['id']}/approve", json={"question": "Crypto?", "answer": ""}
        )
        assert empty.status_code == 422, empty.text
        assert (await svc.client.get(BASE, params={"status": "lost"})).status_code == 422
        assert (await svc.client.post(f"{BASE}/nope/dismiss")).status_code == 404
        # An approval whose question is already curated is refused, and the group stays pending.
        created = await svc.client.post("/internal/v1/curated", json={"question": "Crypto?", "answer": "No."})
        assert created.status_code == 201, created.text
        clash = await svc.client.post(
            f"{BASE}/{mine['id']}/approve", json={"question": "crypto", "answer": "No."}
        )
        assert clash.status_code == 409, clash.text
        assert [g["id"] for g in await groups(svc)] == [mine["id"]]
