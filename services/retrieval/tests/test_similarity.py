"""``/internal/v1/similarity``: sentences compared with a question in the knowledge base's own embedding
space, across languages, within the tenant, with bounded input."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.mark.asyncio
async def test_a_russian_question_finds_the_english_sentence_that_answers_it(sqlite_service: Any) -> None:
    kb = await sqlite_service.create_kb("shop")
    texts = [
        "Delivery costs: courier delivery to your door costs 349 roubles.",
        "Returns: most items can be returned within 30 days.",
        "Accounts: you can delete your account in the profile settings.",
    ]
    body = {"kb_id": kb["id"], "queries": ["Сколько стоит доставка курьером?", "How do I return an item?"]}
    response = await sqlite_service.client.post("/internal/v1/similarity", json={**body, "texts": texts})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["model"] == kb["embedding_model"]
    delivery, returns = answer["scores"]
    assert len(delivery) == len(returns) == 3
    assert max(range(3), key=lambda i: delivery[i]) == 0
    assert max(range(3), key=lambda i: returns[i]) == 1
    # The sentence vectors are kept: the same request again gives the same scores.
    again = await sqlite_service.client.post("/internal/v1/similarity", json={**body, "texts": texts})
    assert again.json()["scores"] == answer["scores"]

    other = await sqlite_service.client.post(
        "/internal/v1/similarity", json={**body, "texts": texts}, headers={"X-Tenant-ID": "other"}
    )
    assert other.status_code == 404 and other.json()["error"]["code"] == "not_found"
    too_many = await sqlite_service.client.post(
        "/internal/v1/similarity", json={**body, "texts": ["a sentence"] * 257}
    )
    assert too_many.status_code == 422 and "error" in too_many.json()
    empty = await sqlite_service.client.post("/internal/v1/similarity", json={**body, "texts": []})
    assert empty.status_code == 422
