"""Re-sync reflects additions, edits and deletions on every connector — FAQ files, folder uploads, a single
URL, a sitemap crawl, a Confluence space (files sources: ``test_sync_and_search``) — against real local
servers; a deleted document is found by neither the vector index nor BM25. Documents can be deleted and
re-synced one by one, within their tenant only; citations carry public URLs only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

MODES = ("vector", "bm25", "hybrid")
OTHER_TENANT = {"X-Tenant-ID": "someone-else"}


async def documents(svc: Any, kb_id: str) -> dict[str, dict[str, Any]]:
    """The knowledge base's documents by URI."""
    response = await svc.client.get(f"/internal/v1/kbs/{kb_id}/documents", params={"limit": 500})
    assert response.status_code == 200, response.text
    return {d["uri"]: d for d in response.json()["items"]}


async def assert_unfindable(svc: Any, kb_id: str, query: str, document_id: str) -> None:
    for mode in MODES:
        hits = await svc.search(kb_id, query, mode=mode, top_k=50)
        assert all(h["document_id"] != document_id for h in hits), (mode, hits)


async def top_text(svc: Any, kb_id: str, query: str) -> str:
    hits = await svc.search(kb_id, query)
    assert hits, query
    return str(hits[0]["text"])


def counts(job: dict[str, Any]) -> tuple[int, int, int, int]:
    assert job["status"] == "succeeded", job
    c = job["counts"]
    return c["documents_added"], c["documents_updated"], c["documents_unchanged"], c["documents_deleted"]


def page(title: str, body: str) -> str:
    return f"<html><head><title>{title}</title></head><body><main><h1>{title}</h1><p>{body}</p></main></body></html>"


@pytest.mark.asyncio
async def test_faq_csv_and_json(sqlite_service: Any, tmp_path: Path) -> None:
    svc = sqlite_service
    folder = tmp_path / "faq"
    folder.mkdir()
    (folder / "orders.csv").write_text(
        "question;answer\nDo you ship abroad?;No, only within the country.\n"
        "Can I pay by card?;Yes, Visa and Mastercard.\n"
    )
    (folder / "gifts.json").write_text(
        json.dumps({"faq": [{"question": "Do you sell gift cards?", "answer": "Yes, from 500 roubles."}]})
    )
    kb = await svc.create_kb("faq")
    source, job = await svc.add_source(kb["id"], {"type": "faq", "config": {"path": str(folder)}})
    assert counts(job) == (2, 0, 0, 0)
    gifts = (await documents(svc, kb["id"]))["gifts.json"]

    # An answer edited and a pair added in the CSV; the JSON file deleted; a new JSON file added.
    (folder / "orders.csv").write_text(
        "question;answer\nDo you ship abroad?;Yes, to Kazakhstan and Belarus too.\n"
        "Can I pay by card?;Yes, Visa and Mastercard.\nCan I return an item?;Within 30 days.\n"
    )
    (folder / "gifts.json").unlink()
    (folder / "pickup.json").write_text(
        json.dumps([{"question": "Is there a pickup point?", "answer": "Yes, at Lenina 5, open 9 to 21."}])
    )
    assert counts(await svc.sync(kb["id"], source["id"])) == (1, 1, 0, 1)
    assert "Kazakhstan" in await top_text(svc, kb["id"], "do you ship abroad")
    assert "Lenina 5" in await top_text(svc, kb["id"], "where is the pickup point")
    assert "30 days" in await top_text(svc, kb["id"], "can I return an item")
    await assert_unfindable(svc, kb["id"], "gift cards", gifts["id"])


@pytest.mark.asyncio
async def test_folder_upload_source_mirrors_the_folder(sqlite_service: Any) -> None:
    """What ``switchboard ingest DIR`` does: upload what changed, prune what the folder lost, sync."""
    svc = sqlite_service
    kb = await svc.create_kb("uploads")
    made = await svc.client.post(
        f"/internal/v1/kbs/{kb['id']}/sources",
        json={
            "type": "upload",
            "name": "docs",
            "config": {"public_base_url": "https://help.example/"},
            "sync": False,
        },
    )
    assert made.status_code == 201 and made.json()["job"] is None, made.text
    source = made.json()["source"]
    assert source["config"] == {"public_base_url": "https://help.example/", "default": False}

    async def upload(*files: tuple[str, str]) -> None:
        payload = [("files", (name, text.encode(), "text/markdown")) for name, text in files]
        response = await svc.client.post(
            f"/internal/v1/kbs/{kb['id']}/files",
            files=payload,
            params={"source_id": source["id"], "sync": "false"},
        )
        assert response.status_code == 202 and response.json()["source_id"] == source["id"], response.text

    await upload(
        ("guides/returns.md", "# Returns\n\nReturn any item within 30 days of delivery.\n"),
        (
            "warranty.md",
            "# Warranty\n\nKettles carry a two-year warranty; bring the receipt to a service centre.\n",
        ),
    )
    assert counts(await svc.sync(kb["id"], source["id"])) == (2, 0, 0, 0)
    stored = (await svc.client.get(f"/internal/v1/kbs/{kb['id']}/sources/{source['id']}/files")).json()
    assert sorted(f["name"] for f in stored) == ["guides/returns.md", "warranty.md"]
    assert all(len(f["sha256"]) == 64 for f in stored)
    hits = await svc.search(kb["id"], "how many days to return an item")
    assert hits[0]["url"] == "https://help.example/guides/returns.md" and hits[0]["title"] == "Returns"
    warranty = (await documents(svc, kb["id"]))["warranty.md"]

    # Edit one, add one, remove one (the uploader keeps only what the folder holds).
    await upload(
        ("guides/returns.md", "# Returns\n\nReturn any item within 45 days of delivery.\n"),
        ("delivery.md", "# Delivery\n\nCourier delivery costs 349 roubles.\n"),
    )
    pruned = await svc.client.post(
        f"/internal/v1/kbs/{kb['id']}/sources/{source['id']}/files/prune",
        json={"keep": ["guides/returns.md", "delivery.md"]},
    )
    assert pruned.status_code == 200 and pruned.json() == {"deleted": ["warranty.md"]}, pruned.text
    assert counts(await svc.sync(kb["id"], source["id"])) == (1, 1, 0, 1)
    assert "45 days" in await top_text(svc, kb["id"], "how many days to return an item")
    await assert_unfindable(svc, kb["id"], "kettle warranty service centre receipt", warranty["id"])

    # The default upload source is another one, untouched by the folder's pruning.
    other = await svc.client.post(
        f"/internal/v1/kbs/{kb['id']}/files",
        files=[("files", ("faq.txt", b"Opening hours: 9 to 21.", "text/plain"))],
    )
    assert other.status_code == 202 and other.json()["source_id"] != source["id"]
    assert (await svc.wait_job(other.json()["job"]["id"]))["status"] == "succeeded"
    wrong = await svc.client.post(
        f"/internal/v1/kbs/{kb['id']}/sources/{source['id']}/files/prune",
        json={"keep": []},
        headers=OTHER_TENANT,
    )
    assert wrong.status_code == 404


@pytest.mark.asyncio
async def test_single_url(sqlite_service: Any, site: Any) -> None:
    svc = sqlite_service
    site.add("/delivery.html", page("Delivery", "Courier delivery costs 349 roubles."))
    kb = await svc.create_kb("url")
    source, job = await svc.add_source(
        kb["id"], {"type": "url", "config": {"url": f"{site.base}/delivery.html"}}
    )
    assert counts(job) == (1, 0, 0, 0)
    assert counts(await svc.sync(kb["id"], source["id"])) == (0, 0, 1, 0)
    site.add("/delivery.html", page("Delivery", "Courier delivery costs 399 roubles."))
    assert counts(await svc.sync(kb["id"], source["id"])) == (0, 1, 0, 0)
    assert "399" in await top_text(svc, kb["id"], "how much does courier delivery cost")
    document = (await documents(svc, kb["id"]))[f"{site.base}/delivery.html"]

    # The page is taken down: 404 (or 410) means gone, not a passing failure.
    del site.pages["/delivery.html"]
    assert counts(await svc.sync(kb["id"], source["id"])) == (0, 0, 0, 1)
    assert await documents(svc, kb["id"]) == {}
    await assert_unfindable(svc, kb["id"], "courier delivery cost", document["id"])
    # A server error is not a deletion: the last good version would be kept (and the job says why).
    site.add("/delivery.html", page("Delivery", "back again: courier delivery costs 399 roubles."))
    assert counts(await svc.sync(kb["id"], source["id"])) == (1, 0, 0, 0)
    site.add("/delivery.html", "oops", status=503)
    failed = await svc.sync(kb["id"], source["id"])
    assert failed["status"] == "failed" and "503" in failed["error"]
    assert list(await documents(svc, kb["id"])) == [f"{site.base}/delivery.html"]


@pytest.mark.asyncio
async def test_sitemap_crawl(sqlite_service: Any, site: Any) -> None:
    """A site (Read the Docs serves the same sitemap.xml) whose pages are added, edited, dropped from the
    sitemap, and taken down while still listed."""
    svc = sqlite_service

    def sitemap(*paths: str) -> None:
        urls = "".join(f"<url><loc>{site.base}{p}</loc></url>" for p in paths)
        site.add(
            "/sitemap.xml",
            f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>',
            "application/xml",
        )

    sitemap("/builds.html", "/domains.html", "/teams.html")
    site.add("/builds.html", page("Builds", "Cancel a running build from the build page."))
    site.add("/domains.html", page("Custom domains", "Add a CNAME record for docs.example.com."))
    site.add("/teams.html", page("Teams", "Invite people to your organization's team."))
    kb = await svc.create_kb("crawl")
    source, job = await svc.add_source(
        kb["id"], {"type": "sitemap", "config": {"url": f"{site.base}/sitemap.xml"}}
    )
    assert counts(job) == (3, 0, 0, 0)
    docs = await documents(svc, kb["id"])
    domains, teams = docs[f"{site.base}/domains.html"], docs[f"{site.base}/teams.html"]

    site.add("/builds.html", page("Builds", "Cancel a running build with the Cancel button on its page."))
    site.add("/redirects.html", page("Redirects", "Set up redirects from old page addresses to new ones."))
    sitemap("/builds.html", "/teams.html", "/redirects.html")  # domains dropped from the sitemap
    del site.pages["/teams.html"]  # teams still listed but taken down
    assert counts(await svc.sync(kb["id"], source["id"])) == (1, 1, 0, 2)
    assert sorted(await documents(svc, kb["id"])) == [
        f"{site.base}/builds.html",
        f"{site.base}/redirects.html",
    ]
    assert "Cancel button" in await top_text(svc, kb["id"], "how do I cancel a build")
    assert "redirects" in (await top_text(svc, kb["id"], "redirect old addresses")).lower()
    await assert_unfindable(svc, kb["id"], "CNAME record custom domain", domains["id"])
    await assert_unfindable(svc, kb["id"], "invite people to the team", teams["id"])


def confluence_page(page_id: str, title: str, body: str, version: int) -> dict[str, Any]:
    return {
        "id": page_id,
        "type": "page",
        "status": "current",
        "title": title,
        "ancestors": [{"id": "1", "title": "Help centre"}],
        "body": {"storage": {"value": body, "representation": "storage"}},
        "version": {"number": version},
        "_links": {"webui": f"/spaces/HELP/pages/{page_id}"},
    }


@pytest.mark.asyncio
async def test_confluence_space(sqlite_service: Any, site: Any) -> None:
    svc = sqlite_service
    listing = (
        "/wiki/rest/api/content?spaceKey=HELP&type=page&status=current"
        "&expand=body.storage,ancestors,version&limit=50&start=0"
    )

    def space(*pages: dict[str, Any]) -> None:
        payload = {
            "results": list(pages),
            "start": 0,
            "limit": 50,
            "size": len(pages),
            "_links": {"base": f"{site.base}/wiki", "context": "/wiki"},
        }
        site.add(listing, json.dumps(payload), "application/json")

    returns = confluence_page("101", "Returns", "<p>Return any item within 30 days.</p>", 1)
    delivery = confluence_page("102", "Delivery", "<p>Courier delivery costs 349 roubles.</p>", 1)
    space(returns, delivery)
    config = {
        "base_url": f"{site.base}/wiki",
        "space_key": "HELP",
        "email": "bot@example.com",
        "api_token": "t",
    }
    kb = await svc.create_kb("wiki")
    source, job = await svc.add_source(kb["id"], {"type": "confluence", "config": config})
    assert counts(job) == (2, 0, 0, 0)
    delivery_doc = (await documents(svc, kb["id"]))["confluence:102"]

    # Returns edited (a new version), Delivery deleted from the space, Payment created.
    space(
        confluence_page("101", "Returns", "<p>Return any item within 45 days.</p>", 2),
        confluence_page("103", "Payment", "<p>Pay by card or in four instalments.</p>", 1),
    )
    assert counts(await svc.sync(kb["id"], source["id"])) == (1, 1, 0, 1)
    assert "45 days" in await top_text(svc, kb["id"], "how many days to return an item")
    assert "instalments" in await top_text(svc, kb["id"], "can I pay in instalments")
    await assert_unfindable(svc, kb["id"], "courier delivery cost", delivery_doc["id"])


@pytest.mark.asyncio
async def test_delete_and_resync_one_document(service: Any, tmp_path: Path) -> None:
    svc = service
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "returns.md").write_text("# Returns\n\nReturn any item within 30 days of delivery.\n")
    (folder / "warranty.md").write_text("# Warranty\n\nKettles carry a two-year warranty.\n")
    kb = await svc.create_kb("docs")
    source, _ = await svc.add_source(kb["id"], {"type": "files", "config": {"path": str(folder)}})
    docs = await documents(svc, kb["id"])
    returns, warranty = docs["returns.md"], docs["warranty.md"]
    route = f"/internal/v1/kbs/{kb['id']}/documents"

    # Another tenant can neither delete nor re-sync it.
    assert (await svc.client.delete(f"{route}/{warranty['id']}", headers=OTHER_TENANT)).status_code == 404
    assert (await svc.client.post(f"{route}/{warranty['id']}/sync", headers=OTHER_TENANT)).status_code == 404

    deleted = await svc.client.delete(f"{route}/{warranty['id']}")
    assert deleted.status_code == 204, deleted.text
    assert (await svc.client.delete(f"{route}/{warranty['id']}")).status_code == 404
    assert (await svc.client.post(f"{route}/nope/sync")).status_code == 404
    await assert_unfindable(svc, kb["id"], "kettle two-year warranty", warranty["id"])
    assert list(await documents(svc, kb["id"])) == ["returns.md"]

    # Re-syncing one document fetches only it: an edit is picked up, the other file's edit waits.
    (folder / "returns.md").write_text("# Returns\n\nReturn any item within 45 days of delivery.\n")
    queued = await svc.client.post(f"{route}/{returns['id']}/sync")
    assert queued.status_code == 202 and queued.json()["document_id"] == returns["id"], queued.text
    job = await svc.wait_job(queued.json()["id"])
    assert counts(job) == (0, 1, 0, 0) and job["documents_seen"] == 1
    assert "45 days" in await top_text(svc, kb["id"], "how many days to return an item")

    # The file removed from the folder: re-syncing its document removes it.
    (folder / "returns.md").unlink()
    queued = await svc.client.post(f"{route}/{returns['id']}/sync")
    assert counts(await svc.wait_job(queued.json()["id"])) == (0, 0, 0, 1)
    assert await documents(svc, kb["id"]) == {}
    await assert_unfindable(svc, kb["id"], "return an item", returns["id"])

    # A document of a files source still on disk comes back with the next sync of the whole source.
    assert counts(await svc.sync(kb["id"], source["id"])) == (1, 0, 0, 0)
    assert list(await documents(svc, kb["id"])) == ["warranty.md"]


@pytest.mark.asyncio
async def test_citation_urls_are_public_addresses_only(sqlite_service: Any, tmp_path: Path) -> None:
    svc = sqlite_service
    folder = tmp_path / "secret-server-dir"
    (folder / "en").mkdir(parents=True)
    (folder / "en" / "delivery.md").write_text("# Delivery\n\nCourier delivery costs 349 roubles.\n")
    kb = await svc.create_kb("paths")
    source, _ = await svc.add_source(kb["id"], {"type": "files", "config": {"path": str(folder)}})
    hits = await svc.search(kb["id"], "courier delivery cost")
    assert hits[0]["title"] == "Delivery" and hits[0]["url"] is None
    assert str(folder) not in json.dumps(hits) and str(folder) not in json.dumps(
        await documents(svc, kb["id"])
    )

    # With a public address for the folder, citations link there (here without the file extension).
    config = {"path": str(folder), "public_base_url": "https://help.example/kb", "public_url_extension": ""}
    patched = await svc.client.patch(
        f"/internal/v1/kbs/{kb['id']}/sources/{source['id']}", json={"config": config}
    )
    assert patched.status_code == 200, patched.text
    assert counts(await svc.sync(kb["id"], source["id"]))[1] == 1
    hits = await svc.search(kb["id"], "courier delivery cost")
    assert hits[0]["url"] == "https://help.example/kb/en/delivery"
    bad = await svc.client.patch(
        f"/internal/v1/kbs/{kb['id']}/sources/{source['id']}",
        json={"config": {"path": str(folder), "public_base_url": "file:///etc"}},
    )
    assert bad.status_code == 400 and "public_base_url" in bad.json()["error"]["message"]
