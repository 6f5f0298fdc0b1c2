"""Knowledge sync as a customer meets it, across real processes: a folder ingested with ``switchboard ingest``
through the gateway, asked through the widget, a file deleted and the folder ingested again — the deleted
document is no longer found nor cited; citations never show a path of the retrieval server; the document
routes are for the tenant's server and admin keys only."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from switchboard_cli.main import app

from .conftest import OPERATOR_TOKEN, Fleet, tenant_server_key

pytestmark = pytest.mark.e2e
TENANT = "e2e-kb-sync"
ORIGIN = "https://shop.example"
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
WARRANTY = (
    "# Warranty\n\nThe warranty on every kettle lasts two years from the day of purchase. To claim it, bring "
    "the kettle and the receipt to any service centre; repairs under warranty are free.\n"
)
PICKUP = "# Pickup point\n\nOur pickup point is at Lenina street 5, open every day from 9 to 21.\n"
SHIPPING = (
    "# Shipping\n\nStandard shipping takes three to five business days within the country. "
    "Express shipping arrives the next business day when ordered before noon.\n"
)


def _new_key(gateway: str, tenant: str, scope: str, **body: Any) -> str:
    created = httpx.post(
        f"{gateway}/v1/admin/tenants/{tenant}/keys",
        json={"scope": scope, "name": f"e2e-{scope}", **body},
        headers=OPERATOR,
    )
    assert created.status_code == 201, created.text
    return str(created.json()["key"])


def _ingest(gateway: str, key: str, folder: Path, *extra: str) -> str:
    result = CliRunner().invoke(
        app,
        ["ingest", str(folder), "--kb", "help", "--gateway", gateway, "--key", key, "--poll", "0.2", *extra],
    )
    assert result.exit_code == 0, result.output
    return result.output


def _ask(gateway: str, widget_key: str, question: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {widget_key}", "Origin": ORIGIN, "X-Anonymous-ID": "kb-sync-visitor"}
    with httpx.Client(base_url=gateway, headers=headers, timeout=60.0) as client:
        created = client.post(
            "/v1/conversations", json={"end_user_id": "anon:kb-sync-visitor", "channel": "web"}
        )
        assert created.status_code in (200, 201), created.text
        answered = client.post(f"/v1/conversations/{created.json()['id']}/messages", json={"text": question})
        assert answered.status_code == 200, answered.text
        reply: dict[str, Any] = answered.json()["reply"]
        return reply


def test_a_deleted_file_is_no_longer_cited_after_the_folder_is_ingested_again(
    fleet: Fleet, tmp_path: Path
) -> None:
    fleet.require("chat", "retrieval")
    gateway = fleet.gateway
    server_key = tenant_server_key(gateway, TENANT)
    widget_key = _new_key(gateway, TENANT, "widget", allowed_origins=[ORIGIN])
    folder = tmp_path / "docs"
    (folder / "care").mkdir(parents=True)
    (folder / "care" / "warranty.md").write_text(WARRANTY)
    (folder / "pickup.md").write_text(PICKUP)

    _ingest(gateway, server_key, folder, "--public-base-url", "https://help.shop.example/")
    before = _ask(gateway, widget_key, "How long is the warranty on a kettle?")
    assert before["citations"], before
    cited = before["citations"][0]
    assert cited["title"] == "Warranty"
    # A public address mapped from the file's place in the folder, never a path on the server.
    assert cited["url"] == "https://help.shop.example/care/warranty.md"
    assert str(tmp_path) not in str(before)

    (folder / "care" / "warranty.md").unlink()
    output = _ingest(gateway, server_key, folder)
    assert "1 removed from the source" in output, output
    after = _ask(gateway, widget_key, "How long is the warranty on a kettle?")
    assert all(c["document_id"] != cited["document_id"] for c in after["citations"]), after
    assert "two-year" not in after["text"], after
    with httpx.Client(base_url=gateway, headers={"Authorization": f"Bearer {server_key}"}) as client:
        for mode in ("vector", "bm25", "hybrid"):
            hits = client.post("/v1/search", json={"query": "kettle warranty claim", "mode": mode}).json()[
                "hits"
            ]
            assert all(h["document_id"] != cited["document_id"] for h in hits), (mode, hits)
    # The file still there is still answered from.
    pickup = _ask(gateway, widget_key, "Where is your pickup point?")
    assert pickup["citations"] and pickup["citations"][0]["title"] == "Pickup point", pickup
    assert pickup["citations"][0]["url"] == "https://help.shop.example/pickup.md"


def test_citations_of_files_without_a_public_address_carry_no_server_path(
    fleet: Fleet, tmp_path: Path
) -> None:
    fleet.require("chat", "retrieval")
    gateway = fleet.gateway
    tenant = "e2e-kb-paths"
    server_key = tenant_server_key(gateway, tenant)
    widget_key = _new_key(gateway, tenant, "widget", allowed_origins=[ORIGIN])
    folder = tmp_path / "private-docs"
    folder.mkdir()
    (folder / "warranty.md").write_text(WARRANTY)
    _ingest(gateway, server_key, folder)
    reply = _ask(gateway, widget_key, "How long is the warranty on a kettle?")
    assert reply["citations"], reply
    assert reply["citations"][0]["title"] == "Warranty" and reply["citations"][0]["url"] is None
    assert "private-docs" not in str(reply) and str(tmp_path) not in str(reply)


def test_document_routes_are_for_the_tenants_server_and_admin_keys(fleet: Fleet, tmp_path: Path) -> None:
    fleet.require("retrieval")
    gateway = fleet.gateway
    tenant = "e2e-kb-owner"
    server_key = tenant_server_key(gateway, tenant)
    admin_key = _new_key(gateway, tenant, "admin")
    widget_key = _new_key(gateway, tenant, "widget", allowed_origins=[ORIGIN])
    stranger_key = tenant_server_key(gateway, "e2e-kb-stranger")
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "warranty.md").write_text(WARRANTY)
    (folder / "shipping.md").write_text(SHIPPING)
    _ingest(gateway, server_key, folder)
    owner = httpx.Client(base_url=gateway, headers={"Authorization": f"Bearer {server_key}"}, timeout=60.0)
    kb = owner.get("/v1/kbs", params={"name": "help"}).json()["items"][0]
    docs = {d["name"]: d for d in owner.get(f"/v1/kbs/{kb['id']}/documents").json()["items"]}
    warranty, shipping = docs["warranty.md"], docs["shipping.md"]
    source_id = warranty["source_id"]

    widget = {"Authorization": f"Bearer {widget_key}", "Origin": ORIGIN, "X-Anonymous-ID": "kb-owner-visitor"}
    stranger = {"Authorization": f"Bearer {stranger_key}"}
    document = f"/v1/kbs/{kb['id']}/documents/{warranty['id']}"
    for method, path in (
        ("DELETE", document),
        ("POST", f"{document}/sync"),
        ("POST", f"/v1/kbs/{kb['id']}/sources/{source_id}/sync"),
    ):
        assert httpx.request(method, f"{gateway}{path}", headers=widget).status_code == 403, path
        refused = httpx.request(method, f"{gateway}{path}", headers=stranger)
        assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_found", path

    resync = owner.post(f"{document}/sync")
    assert resync.status_code == 202 and resync.json()["document_id"] == warranty["id"], resync.text
    assert _wait(owner, resync.json()["id"])["counts"]["documents_unchanged"] == 1

    admin = {"Authorization": f"Bearer {admin_key}"}
    deleted = httpx.delete(f"{gateway}{document}", headers=admin)
    assert deleted.status_code == 204, deleted.text
    assert httpx.delete(f"{gateway}{document}", headers=admin).status_code == 404
    names = {d["name"] for d in owner.get(f"/v1/kbs/{kb['id']}/documents").json()["items"]}
    assert names == {"shipping.md"}
    hits = owner.post("/v1/search", json={"query": "kettle warranty claim", "mode": "bm25"}).json()["hits"]
    assert all(h["document_id"] != warranty["id"] for h in hits)
    # An uploaded file deleted by its document stays deleted when the source syncs again.
    again = owner.post(f"/v1/kbs/{kb['id']}/sources/{source_id}/sync")
    assert again.status_code == 202, again.text
    assert _wait(owner, again.json()["id"])["counts"]["documents_added"] == 0
    assert {d["id"] for d in owner.get(f"/v1/kbs/{kb['id']}/documents").json()["items"]} == {shipping["id"]}
    owner.close()


def _wait(client: httpx.Client, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while (job := client.get(f"/v1/jobs/{job_id}").json())["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, job
        time.sleep(0.3)
    assert job["status"] == "succeeded", job
    return dict(job)
