"""Ingest the demo knowledge base through the API, search it, and re-sync after edits, additions and
deletions (on SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

# Citations link only to public addresses: the tests find documents by the path mapped onto this one.
PUBLIC = "https://help.example/"


@pytest.mark.asyncio
async def test_ingest_search_and_incremental_resync(service: Any, demo_copy: Path) -> None:
    kb = await service.create_kb("shop")
    source, job = await service.add_source(
        kb["id"], {"type": "files", "config": {"path": str(demo_copy), "public_base_url": PUBLIC}}
    )
    assert job["status"] == "succeeded", job
    assert job["documents_seen"] == 22 and job["documents_failed"] == 0 and job["documents_total"] == 22
    counts = job["counts"]
    assert counts["documents_added"] == 22 and counts["added"] > 22
    total = counts["added"]
    assert job["chunks_embedded"] == total

    hits = await service.search(kb["id"], "how long do I have to send an item back?")
    assert hits[0]["url"].endswith("en/returns.md")
    assert hits[0]["vector_score"] is not None and hits[0]["bm25_score"] is not None
    assert "**" in hits[0]["snippet"]
    ru = await service.search(kb["id"], "сколько хранится посылка в пункте выдачи")
    assert ru[0]["url"].endswith("ru/dostavka.md") and ru[0]["language"] == "ru"

    # Nothing changed: nothing re-embedded.
    again = await service.sync(kb["id"], source["id"])
    assert again["counts"]["unchanged"] == total and again["chunks_embedded"] == 0
    assert again["counts"]["added"] == again["counts"]["updated"] == again["counts"]["deleted"] == 0

    # Edit one section, add a file, delete a file.
    returns = demo_copy / "en" / "returns.md"
    returns.write_text(returns.read_text().replace("within **30 days**", "within **45 days**"))
    (demo_copy / "en" / "gift-wrapping.md").write_text(
        "# Gift wrapping\n\nWe wrap any order in recycled paper with a handwritten card for 150 roubles.\n"
    )
    warranty_chunks = await _chunk_count(service, kb["id"], "en/warranty.md")
    (demo_copy / "en" / "warranty.md").unlink()
    synced = await service.sync(kb["id"], source["id"])
    c = synced["counts"]
    assert (c["documents_updated"], c["documents_added"], c["documents_deleted"]) == (1, 1, 1)
    assert c["updated"] == 1 and c["added"] == 1 and c["deleted"] == warranty_chunks
    assert c["unchanged"] == total - 1 - warranty_chunks
    assert synced["chunks_embedded"] == 2

    hits = await service.search(kb["id"], "can you wrap my present?")
    assert hits[0]["url"].endswith("gift-wrapping.md")
    hits = await service.search(kb["id"], "how many days to return an item")
    assert "45 days" in hits[0]["text"]
    for mode in ("vector", "bm25", "hybrid"):
        found = await service.search(kb["id"], "warranty claim repair service centre", mode=mode, top_k=20)
        assert all(not h["url"].endswith("en/warranty.md") for h in found), mode


async def _chunk_count(service: Any, kb_id: str, suffix: str) -> int:
    docs = (await service.client.get(f"/internal/v1/kbs/{kb_id}/documents")).json()["items"]
    doc = next(d for d in docs if d["uri"].endswith(suffix))
    count: int = doc["chunk_count"]
    return count


@pytest.mark.asyncio
async def test_documents_chunks_filters_and_delete(service: Any, demo_copy: Path) -> None:
    kb = await service.create_kb("shop")
    en, _ = await service.add_source(
        kb["id"], {"type": "files", "config": {"path": str(demo_copy / "en")}, "tags": ["en"]}
    )
    ru, _ = await service.add_source(
        kb["id"], {"type": "files", "config": {"path": f"file://{demo_copy}/ru/*.md"}, "tags": ["ru"]}
    )
    docs = (await service.client.get(f"/internal/v1/kbs/{kb['id']}/documents", params={"limit": 100})).json()
    assert docs["total"] == 21  # 11 English files, 10 Russian Markdown files (the glob leaves out faq.json)
    doc = next(d for d in docs["items"] if d["uri"].endswith("returns.md"))
    assert doc["title"] == "Returns and refunds" and doc["language"] == "en"
    chunks = (await service.client.get(f"/internal/v1/kbs/{kb['id']}/documents/{doc['id']}/chunks")).json()
    assert chunks["total"] == doc["chunk_count"]
    assert chunks["items"][0]["heading_path"] == ["How long do I have to return an item?"]

    only_ru = await service.search(kb["id"], "return policy refund", filters={"tags": ["ru"]}, top_k=10)
    assert only_ru and all(h["source_id"] == ru["id"] for h in only_ru)
    only_en = await service.search(kb["id"], "доставка", filters={"source_ids": [en["id"]]}, top_k=10)
    assert all(h["source_id"] == en["id"] for h in only_en)

    listed = (await service.client.get("/internal/v1/kbs")).json()
    assert listed["total"] == 1 and listed["items"][0]["document_count"] == 21

    # Chat's search: every KB of the tenant; another tenant sees nothing.
    response = await service.client.post("/internal/v1/search", json={"query": "Pelican Plus price"})
    assert response.status_code == 200 and response.json()["hits"][0]["text"].find("199") >= 0
    other = await service.client.post(
        "/internal/v1/search", json={"query": "Pelican Plus"}, headers={"X-Tenant-ID": "other"}
    )
    assert other.json()["hits"] == []
    assert (
        await service.client.get(f"/internal/v1/kbs/{kb['id']}", headers={"X-Tenant-ID": "other"})
    ).status_code == 404

    assert (await service.client.delete(f"/internal/v1/kbs/{kb['id']}/sources/{en['id']}")).status_code == 204
    hits = await service.search(kb["id"], "Pelican Plus loyalty programme", top_k=10)
    assert hits and all(h["source_id"] == ru["id"] for h in hits)

    assert (await service.client.delete(f"/internal/v1/kbs/{kb['id']}")).status_code == 204
    assert (await service.client.get(f"/internal/v1/kbs/{kb['id']}")).status_code == 404
    missing = await service.client.post("/internal/v1/search", json={"query": "x", "kb_ids": [kb["id"]]})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
