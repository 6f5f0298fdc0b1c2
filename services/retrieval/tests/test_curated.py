"""Curated answers: managed per tenant with clear refusals of bad input, matched inside a search across
languages (a Russian message finds an English entry and the reverse), answered in the customer's language
when the tenant has that entry, counted per hit, and kept (unlinked) when their knowledge base goes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from switchboard_retrieval.curated.matching import Entry, TenantIndex, wording_key

OTHER = {"X-Tenant-ID": "globex"}
RETURNS = {
    "question": "How long do I have to return an item?",
    "variants": ["What is your return period?"],
    "answer": "You can return most items within 30 days of delivery.",
    "language": "en",
    "tags": ["returns"],
    "group": "returns",
}
RETURNS_RU = {
    "question": "Какой у вас срок возврата?",
    "answer": "Большинство товаров можно вернуть в течение 30 дней после доставки.",
    "language": "ru",
    "group": "returns",
}
PASSWORD = {
    "question": "How do I reset my password?",
    "answer": "Press Forgot password on the sign-in page and follow the link we email you.",
}


async def _create(svc: Any, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    response = await svc.client.post("/internal/v1/curated", json=body, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _search(svc: Any, query: str, **body: Any) -> dict[str, Any]:
    response = await svc.client.post("/internal/v1/search", json={"query": query, "curated": True, **body})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


@pytest.mark.asyncio
async def test_curated_answers_are_managed_per_tenant_and_bad_input_is_refused(
    sqlite_service_with: Any,
) -> None:
    async with sqlite_service_with(default_embedding_model="use-multilingual") as svc:
        entry = await _create(svc, RETURNS)
        assert entry["language"] == "en" and entry["embedding_model"] == "use-multilingual"
        assert entry["hit_count"] == 0 and entry["last_hit_at"] is None and entry["kb_id"] is None
        # The language is detected from the question when not given.
        assert (await _create(svc, {"question": "Как отменить заказ?", "answer": "Нажмите «Отменить»."}))[
            "language"
        ] == "ru"

        post = svc.client.post
        duplicate = await post(
            "/internal/v1/curated", json={**RETURNS, "question": "how long do I have to RETURN an item"}
        )
        assert duplicate.status_code == 409 and duplicate.json()["error"]["code"] == "conflict"
        assert entry["id"] in duplicate.json()["error"]["message"]
        as_variant = await post(
            "/internal/v1/curated", json={**PASSWORD, "variants": ["What is your return period"]}
        )
        assert as_variant.status_code == 409
        empty = await post("/internal/v1/curated", json={**PASSWORD, "answer": "   "})
        assert empty.status_code == 422 and empty.json()["error"]["code"] == "validation_error"
        unknown = await post("/internal/v1/curated", json={**PASSWORD, "language": "xx"})
        assert unknown.status_code == 422 and "unknown language" in unknown.text
        no_kb = await post("/internal/v1/curated", json={**PASSWORD, "kb_id": "nope"})
        assert no_kb.status_code == 404

        listed = (await svc.client.get("/internal/v1/curated", params={"tag": "returns"})).json()
        assert listed["total"] == 1 and listed["items"][0]["id"] == entry["id"]
        assert (await svc.client.get("/internal/v1/curated", params={"language": "ru"})).json()["total"] == 1

        patched = await svc.client.patch(
            f"/internal/v1/curated/{entry['id']}",
            json={"answer": "Within 30 days.", "tags": ["returns", "faq"]},
        )
        assert patched.status_code == 200 and patched.json()["answer"] == "Within 30 days."
        assert patched.json()["variants"] == RETURNS["variants"]

        # Another tenant sees none of it and can use the same question.
        assert (await svc.client.get("/internal/v1/curated", headers=OTHER)).json()["total"] == 0
        hidden = await svc.client.get(f"/internal/v1/curated/{entry['id']}", headers=OTHER)
        assert hidden.status_code == 404
        assert (
            await svc.client.delete(f"/internal/v1/curated/{entry['id']}", headers=OTHER)
        ).status_code == 404
        await _create(svc, RETURNS, **OTHER)
        assert (await _search(svc, "How long do I have to return items?"))["curated"]["answer_id"] == entry[
            "id"
        ]

        assert (await svc.client.delete(f"/internal/v1/curated/{entry['id']}")).status_code == 204
        assert (await svc.client.get(f"/internal/v1/curated/{entry['id']}")).status_code == 404
        assert (await _search(svc, "How long do I have to return items?"))["curated"] is None


@pytest.mark.asyncio
async def test_a_message_matches_across_languages_and_is_answered_in_its_own_language(
    sqlite_service_with: Any,
) -> None:
    async with sqlite_service_with(default_embedding_model="use-multilingual") as svc:
        english = await _create(svc, RETURNS)
        await _create(svc, PASSWORD)

        # A Russian message finds the English entry (through its Russian variant); with no Russian entry it gets
        # the English answer.
        await svc.client.patch(
            f"/internal/v1/curated/{english['id']}",
            json={"variants": [*RETURNS["variants"], "Какой срок возврата товара?"]},
        )
        result = await _search(svc, "Какой срок возврата товаров?")
        match = result["curated"]
        assert match["answer_id"] == english["id"] and match["language"] == "en"
        assert match["score"] >= match["threshold"]
        # A near miss (same words, another question) gets none; a search not asking for curated answers either.
        assert (await _search(svc, "How do I change my email address?"))["curated"] is None
        plain = await svc.client.post("/internal/v1/search", json={"query": "What is your return period?"})
        assert plain.json()["curated"] is None

        # With a Russian entry for the same question, the Russian customer gets it, the English one not.
        russian = await _create(svc, RETURNS_RU)
        match = (await _search(svc, "Какой срок возврата товаров?"))["curated"]
        assert match["answer_id"] == russian["id"] and match["answer"] == RETURNS_RU["answer"]
        # ... also when the message comes closest to the English entry: it answers in Russian.
        match = (await _search(svc, "How long do I have to return items?", language="ru"))["curated"]
        assert match["answer_id"] == russian["id"] and match["question"] == RETURNS["question"]
        match = (await _search(svc, "How long do I have to return items?"))["curated"]
        assert match["answer_id"] == english["id"]

        # A dry run shows the match without counting it; searches count their hits.
        dry = await svc.client.post(
            "/internal/v1/curated/match", json={"query": "What is your return period?"}
        )
        assert dry.status_code == 200 and dry.json()["match"]["answer_id"] == english["id"]
        counted = (await svc.client.get(f"/internal/v1/curated/{english['id']}")).json()
        assert counted["hit_count"] == 2 and counted["last_hit_at"] is not None
        assert (await svc.client.get(f"/internal/v1/curated/{russian['id']}")).json()["hit_count"] == 2

        # The tenant's threshold decides; the calibrated defaults are shown.
        settings = (await svc.client.get("/internal/v1/curated/settings")).json()
        assert settings["threshold"] is None and 0.5 < settings["defaults"]["use-multilingual"] < 1
        strict = await svc.client.put("/internal/v1/curated/settings", json={"threshold": 0.999})
        assert strict.status_code == 200 and strict.json()["threshold"] == 0.999
        assert (await _search(svc, "How long do I have to return items?"))["curated"] is None
        bad = await svc.client.put("/internal/v1/curated/settings", json={"threshold": 7})
        assert bad.status_code == 422


@pytest.mark.asyncio
async def test_deleting_a_knowledge_base_unlinks_its_curated_answers_and_expired_ones_stop_answering(
    sqlite_service_with: Any,
) -> None:
    async with sqlite_service_with(default_embedding_model="use-multilingual") as svc:
        kb = await svc.create_kb("shop", embedding_model="use-multilingual")
        other_kb = await svc.create_kb("other", embedding_model="use-multilingual")
        linked = await _create(svc, {**RETURNS, "kb_id": kb["id"]})
        assert linked["kb_id"] == kb["id"]
        query = "How long do I have to return items?"
        assert (await _search(svc, query, kb_ids=[kb["id"]]))["curated"]["answer_id"] == linked["id"]
        # A search of another knowledge base does not answer with an entry linked to this one.
        assert (await _search(svc, query, kb_ids=[other_kb["id"]]))["curated"] is None

        assert (await svc.client.delete(f"/internal/v1/kbs/{kb['id']}")).status_code == 204
        kept = (await svc.client.get(f"/internal/v1/curated/{linked['id']}")).json()
        assert kept["kb_id"] is None and kept["answer"] == RETURNS["answer"]
        assert (await _search(svc, query, kb_ids=[other_kb["id"]]))["curated"]["answer_id"] == linked["id"]

        past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
        expired = await svc.client.patch(f"/internal/v1/curated/{linked['id']}", json={"expires_at": past})
        assert expired.status_code == 200
        assert (await _search(svc, query))["curated"] is None
        await svc.client.patch(f"/internal/v1/curated/{linked['id']}", json={"expires_at": None})
        assert (await _search(svc, query))["curated"]["answer_id"] == linked["id"]


def _entry(entry_id: str, language: str, vectors: list[list[float]], group: str | None = None) -> Entry:
    rows = np.array(vectors, dtype=np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return Entry(
        id=entry_id,
        kb_id=None,
        language=language,
        answer=f"answer {entry_id}",
        group=group,
        wordings=tuple(f"{entry_id} wording {i}" for i in range(len(vectors))),
        model="m",
        expires_at=None,
        vectors=rows,
    )


def test_the_closest_entry_wins_and_its_counterpart_answers_in_the_customers_language() -> None:
    index = TenantIndex.build(
        1,
        [
            _entry("en-a", "en", [[1, 0, 0], [0.9, 0.1, 0]], group="a"),
            _entry("ru-a", "ru", [[0.1, 0.2, 0.97]], group="a"),
            _entry("ru-b", "ru", [[0.6, 0.8, 0]]),
            _entry("en-c", "en", [[0.62, 0.78, 0]]),
        ],
    )
    now = datetime.now(UTC)

    def match(vector: list[float], language: str, threshold: float = 0.7) -> Any:
        query = np.array(vector, dtype=np.float32)
        query /= np.linalg.norm(query)
        return index.match(
            {"m": query}, thresholds=lambda _: threshold, language=language, kb_ids=None, now=now
        )

    # The closest entry is English; a Russian customer gets the Russian entry of its group, an English one not.
    assert match([1, 0, 0], "ru").answer_id == "ru-a"
    assert match([1, 0, 0], "en").answer_id == "en-a"
    # An entry in the customer's language does not beat a closer one, and closeness does not make a group:
    # en-c is near ru-b but not its translation.
    assert match([0.6, 0.8, 0], "en").answer_id == "ru-b"
    assert match([0.62, 0.78, 0], "ru").answer_id == "en-c"
    found = match([0, 0, 1], "en")  # the Russian entry matched: its English translation answers
    assert (found.answer_id, found.question, found.language) == ("en-a", "ru-a wording 0", "en")
    assert match([0, -1, 0], "en") is None
    assert wording_key("  How do I   RESET my password?? ") == "how do i reset my password"
