"""A passage text repeated across documents of a knowledge base is indexed once (one vector, one BM25
row), every copy keeps its chunk row, and removing the document whose copy is indexed hands the text over
to a remaining copy, whether the document goes by a sync or by a delete."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from switchboard_retrieval.index.vectors import collection_name

SHARED = (
    "## Invoices\n\nThe quarterly invoice is emailed to the account owner on the first Monday of the "
    "quarter, and a copy stays under Billing for seven years.\n"
)
QUERY = "when is the quarterly invoice emailed"


def write_pages(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "alpha.md").write_text(f"# Alpha plan\n\nAlpha teams get zebra-striped dashboards.\n\n{SHARED}")
    (folder / "beta.md").write_text(f"# Beta plan\n\nBeta teams get penguin-themed reports.\n\n{SHARED}")
    (folder / "gamma.md").write_text("# Gamma plan\n\nGamma teams get a dedicated walrus manager.\n")


async def shared_hits(service: Any, kb_id: str, mode: str) -> list[dict[str, Any]]:
    hits = await service.search(kb_id, QUERY, mode=mode, top_k=10)
    return [h for h in hits if "quarterly invoice" in h["text"]]


async def vector_count(service: Any, kb_id: str) -> int:
    count: int = await service.runtime.vectors.count(collection_name("acme", kb_id))
    return count


async def chunk_total(service: Any, kb_id: str) -> int:
    docs = (await service.client.get(f"/internal/v1/kbs/{kb_id}/documents")).json()["items"]
    return sum(int(d["chunk_count"]) for d in docs)


async def indexed_owner(service: Any, kb_id: str) -> str:
    """The file whose copy of the shared passage is the indexed one, checked in both rankings."""
    owners = set()
    for mode in ("vector", "bm25"):
        hits = await shared_hits(service, kb_id, mode)
        assert len(hits) == 1, (mode, hits)
        owners.add(Path(hits[0]["url"] or hits[0]["document_id"]).name)
    assert len(owners) == 1, owners
    return owners.pop()


@pytest.mark.asyncio
async def test_a_repeated_passage_is_indexed_once_and_survives_a_sync_that_removes_its_copy(
    sqlite_service: Any, tmp_path: Path
) -> None:
    pages = tmp_path / "pages"
    write_pages(pages)
    kb = await sqlite_service.create_kb("plans")
    source, job = await sqlite_service.add_source(
        kb["id"],
        {"type": "files", "config": {"path": str(pages), "public_base_url": "https://help.example/"}},
    )
    assert job["status"] == "succeeded", job
    chunks = await chunk_total(sqlite_service, kb["id"])
    assert job["counts"]["added"] == chunks
    # Every copy has its row; one of the two shared copies is embedded.
    assert job["chunks_embedded"] == chunks - 1
    assert await vector_count(sqlite_service, kb["id"]) == chunks - 1
    owner = await indexed_owner(sqlite_service, kb["id"])
    other = "beta.md" if owner == "alpha.md" else "alpha.md"

    # The page holding the indexed copy loses that section: the other page's copy takes over.
    page = pages / owner
    page.write_text(page.read_text().replace(SHARED, ""))
    synced = await sqlite_service.sync(kb["id"], source["id"])
    assert synced["status"] == "succeeded", synced
    assert await indexed_owner(sqlite_service, kb["id"]) == other
    assert await vector_count(sqlite_service, kb["id"]) == await chunk_total(sqlite_service, kb["id"])

    # Put back: still one copy indexed, and a sync with nothing changed embeds nothing.
    write_pages(pages)
    await sqlite_service.sync(kb["id"], source["id"])
    assert await indexed_owner(sqlite_service, kb["id"]) in ("alpha.md", "beta.md")
    assert await vector_count(sqlite_service, kb["id"]) == await chunk_total(sqlite_service, kb["id"]) - 1
    again = await sqlite_service.sync(kb["id"], source["id"])
    assert again["chunks_embedded"] == 0

    # The whole page goes: the same.
    owner = await indexed_owner(sqlite_service, kb["id"])
    (pages / owner).unlink()
    await sqlite_service.sync(kb["id"], source["id"])
    assert await indexed_owner(sqlite_service, kb["id"]) != owner
    assert await vector_count(sqlite_service, kb["id"]) == await chunk_total(sqlite_service, kb["id"])


@pytest.mark.asyncio
async def test_deleting_the_document_or_source_holding_the_indexed_copy_hands_it_over(
    sqlite_service: Any, tmp_path: Path
) -> None:
    """Four copies in three sources (alpha and beta in one, delta in two, epsilon in three): whichever copy is
    indexed (the smallest chunk id, so it varies from run to run), after its document and then the source
    of its successor are deleted, at least one copy is left in another source to take over."""
    write_pages(tmp_path / "one")
    for folder, name in (("two", "delta"), ("three", "epsilon")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / f"{name}.md").write_text(
            f"# {name.title()} plan\n\n{name.title()} teams get owls.\n\n{SHARED}"
        )
    kb = await sqlite_service.create_kb("plans")
    for folder in ("one", "two", "three"):
        await sqlite_service.add_source(
            kb["id"],
            {
                "type": "files",
                "config": {"path": str(tmp_path / folder), "public_base_url": f"https://{folder}.example/"},
            },
        )
    assert await vector_count(sqlite_service, kb["id"]) == await chunk_total(sqlite_service, kb["id"]) - 3

    async def documents() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = (
            await sqlite_service.client.get(f"/internal/v1/kbs/{kb['id']}/documents")
        ).json()["items"]
        return items

    owner = await indexed_owner(sqlite_service, kb["id"])
    doc = next(d for d in await documents() if d["uri"].endswith(owner))
    response = await sqlite_service.client.delete(f"/internal/v1/kbs/{kb['id']}/documents/{doc['id']}")
    assert response.status_code == 204, response.text
    successor = await indexed_owner(sqlite_service, kb["id"])
    assert successor != owner
    assert await vector_count(sqlite_service, kb["id"]) == await chunk_total(sqlite_service, kb["id"]) - 2

    # Delete the source that holds the indexed copy now: a copy in another source takes over.
    holder = next(d["source_id"] for d in await documents() if d["uri"].endswith(successor))
    response = await sqlite_service.client.delete(f"/internal/v1/kbs/{kb['id']}/sources/{holder}")
    assert response.status_code == 204, response.text
    left = [d for d in await documents() if Path(d["uri"]).name != "gamma.md"]
    assert left and all(d["source_id"] != holder for d in left)
    heir = await indexed_owner(sqlite_service, kb["id"])
    assert heir not in (owner, successor) and heir in {Path(d["uri"]).name for d in left}
    copies = len(left)
    assert await vector_count(sqlite_service, kb["id"]) == await chunk_total(sqlite_service, kb["id"]) - (
        copies - 1
    )
