"""Hosted embedding models need their API key: a knowledge base on one without it is refused, and an old
one that exists anyway does not break the search of the tenant's other knowledge bases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from switchboard_retrieval.models import KnowledgeBaseRow

PUBLIC = "https://help.example/"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("model", "setting"), [("google", "RETRIEVAL_GOOGLE_API_KEY"), ("openai", "RETRIEVAL_OPENAI_API_KEY")]
)
async def test_hosted_model_without_key_is_refused(
    sqlite_service_with: Any, model: str, setting: str
) -> None:
    async with sqlite_service_with() as svc:
        response = await svc.client.post(
            "/internal/v1/kbs", json={"name": "hosted", "embedding_model": model}
        )
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "validation_error"
        assert setting in error["message"] and model in error["message"]
        listed = (await svc.client.get("/internal/v1/kbs")).json()
        assert listed["total"] == 0


@pytest.mark.asyncio
async def test_default_hosted_model_without_key_is_refused(sqlite_service_with: Any) -> None:
    async with sqlite_service_with(default_embedding_model="openai") as svc:
        response = await svc.client.post("/internal/v1/kbs", json={"name": "default model"})
        assert response.status_code == 422, response.text
        assert "RETRIEVAL_OPENAI_API_KEY" in response.json()["error"]["message"]
        local = await svc.client.post("/internal/v1/kbs", json={"name": "local", "embedding_model": "minilm"})
        assert local.status_code == 201, local.text


@pytest.mark.asyncio
async def test_hosted_model_with_key_is_accepted(sqlite_service_with: Any) -> None:
    async with sqlite_service_with(google_api_key="configured-key") as svc:
        response = await svc.client.post(
            "/internal/v1/kbs", json={"name": "hosted", "embedding_model": "google"}
        )
        assert response.status_code == 201, response.text
        assert response.json()["embedding_model"] == "google"


@pytest.mark.asyncio
async def test_search_skips_an_old_kb_whose_model_is_not_configured(
    sqlite_service_with: Any, demo_copy: Path
) -> None:
    async with sqlite_service_with() as svc:
        kb = await svc.create_kb("local", embedding_model="minilm")
        _, job = await svc.add_source(
            kb["id"], {"type": "files", "config": {"path": str(demo_copy / "en"), "public_base_url": PUBLIC}}
        )
        assert job["status"] == "succeeded"
        # A row from before creation checked the model (or from a replica that had the key).
        async with svc.runtime.sessionmaker() as session:
            old = KnowledgeBaseRow(
                tenant_id="acme", name="old hosted", description="", embedding_model="google", index_version=0
            )
            session.add(old)
            await session.commit()
            old_id = old.id
        for mode in ("hybrid", "vector"):
            response = await svc.client.post(
                "/internal/v1/search", json={"query": "Pay in 4 instalments", "mode": mode}
            )
            assert response.status_code == 200, (mode, response.text)
            hits = response.json()["hits"]
            assert hits and hits[0]["kb_id"] == kb["id"] and hits[0]["url"].endswith("payment.md"), mode
        own = await svc.client.post(
            f"/internal/v1/kbs/{old_id}/search", json={"query": "Pay in 4 instalments"}
        )
        assert own.status_code == 200, own.text
        assert own.json()["hits"] == []
