"""Attacks on the ``files`` / ``faq`` sources through the running fleet: fsspec chained URLs
(``simplecache::file://…``, ``simplecache::http://127.0.0.1…``) that slipped past the local-path check and
the URL guard, other fsspec protocols, and globs or symlinks reaching another tenant's uploads or the
service's own data directory. A tenant may read only its own folder."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from .fleet import ReliabilityFleet, retrying, wait_job
from .recorder import Recorder, recorder

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]
__all__ = ["recorder"]  # the fixture
SECRET = "HOST-FILE-SECRET-51c2"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def try_source(client: httpx.Client, kb_id: str, source_type: str, path: str) -> dict[str, Any]:
    """Create the source; when it is accepted, let its sync run. Returns what the tenant got."""
    created = client.post(
        f"/v1/kbs/{kb_id}/sources", json={"type": source_type, "name": "attack", "config": {"path": path}}
    )
    if created.status_code >= 400:
        assert created.status_code in (400, 403, 422), (path, created.status_code, created.text)
        assert created.json()["error"]["code"], created.text
        return {"refused": created.status_code}
    job = created.json().get("job")
    if job is None:
        sync = client.post(f"/v1/kbs/{kb_id}/sources/{created.json()['id']}/sync")
        job = sync.json()
    return {"job": wait_job(client, job["id"], timeout=90)}


def documents_text(client: httpx.Client, kb_id: str) -> str:
    listed = client.get(f"/v1/kbs/{kb_id}/documents", params={"limit": 500}).json()["items"]
    texts = []
    for document in listed:
        chunks = client.get(f"/v1/kbs/{kb_id}/documents/{document['id']}/chunks").json()["items"]
        texts += [chunk["text"] for chunk in chunks]
    return "\n".join(texts)


def test_chained_and_foreign_paths_read_nothing(fleet: ReliabilityFleet, recorder: Recorder) -> None:
    outside = Path(tempfile.mkdtemp(prefix="sb-host-"))
    (outside / "secret.md").write_text(f"# Host file\n\nThe host secret is {SECRET}.\n")
    data = fleet.data_dir
    uploads = data / "uploads"
    web = f"127.0.0.1:{recorder.port}/doc.md"
    attacks = [
        ("files", f"simplecache::file://{outside}/secret.md"),
        ("files", f"filecache::file://{outside}/secret.md"),
        ("files", f"blockcache::file://{outside}/secret.md"),
        ("files", f"simplecache::local://{outside}/secret.md"),
        ("files", f"simplecache::http://{web}"),
        ("files", f"simplecache::https://{web}"),
        ("files", f"http::{outside}"),
        ("files", f"simplecache::{outside}/secret.md"),
        ("files", f"dir::file://{outside}"),
        ("files", f"file://{outside}/secret.md"),
        ("files", f"local://{outside}/secret.md"),
        ("files", str(outside)),
        ("files", f"{data}/files/rivals/../../../{outside.name}/secret.md"),
        ("files", f"{uploads}/**/*.md"),
        ("files", f"file://{uploads}"),
        ("files", f"{data}/**/*.md"),
        ("files", f"{data}/files/*/*.md"),
        ("faq", f"simplecache::file://{outside}/secret.md"),
        ("files", f"ftp://127.0.0.1:{recorder.port}/doc.md"),
        ("files", f"memory://{outside}/secret.md"),
    ]
    results: dict[str, Any] = {}
    with httpx.Client(
        base_url=fleet.gateway, headers=bearer(fleet.other["server_key"]), timeout=60
    ) as client:
        kb = retrying(client, "POST", "/v1/kbs", json={"name": "chained-urls", "embedding_model": "minilm"})
        kb_id = kb.json()["id"]
        for source_type, path in attacks:
            results[path] = try_source(client, kb_id, source_type, path)
        text = documents_text(client, kb_id)
    leaked = {path: r for path, r in results.items() if "job" in r and r["job"]["documents_done"]}
    assert not leaked, f"sources that read files outside the tenant's folder: {leaked}"
    assert SECRET not in text
    assert "Standard shipping takes 3 to 5 business days" not in text  # the demo tenant's upload
    assert not recorder.hits, f"a files source reached a loopback service: {recorder.hits}"
    accepted = [path for path, r in results.items() if "refused" not in r]
    assert not accepted, f"sources accepted although they point outside the tenant's folder: {accepted}"


def test_own_folder_works_but_symlinks_out_of_it_read_nothing(fleet: ReliabilityFleet) -> None:
    own = fleet.data_dir / "files" / "rivals"
    own.mkdir(parents=True, exist_ok=True)
    (own / "guide.md").write_text("# Guide\n\nThe rival kettle boils in 95 seconds.\n")
    links = own / "links"
    links.mkdir(exist_ok=True)
    uploads = fleet.data_dir / "uploads"
    if not (links / "uploads").exists():
        os.symlink(uploads, links / "uploads")
    with httpx.Client(
        base_url=fleet.gateway, headers=bearer(fleet.other["server_key"]), timeout=60
    ) as client:
        kb = retrying(client, "POST", "/v1/kbs", json={"name": "own-folder", "embedding_model": "minilm"})
        kb_id = kb.json()["id"]
        own_source = try_source(client, kb_id, "files", str(own / "guide.md"))
        assert own_source["job"]["status"] == "succeeded", own_source
        assert own_source["job"]["documents_done"] == 1, own_source
        through_link = try_source(client, kb_id, "files", f"{links}/uploads/**/*.md")
        assert "refused" in through_link or through_link["job"]["documents_done"] == 0, through_link
        whole = try_source(client, kb_id, "files", str(own))
        assert "job" in whole and whole["job"]["status"] == "succeeded", whole
        text = documents_text(client, kb_id)
    assert "The rival kettle boils in 95 seconds." in text
    assert "Standard shipping takes 3 to 5 business days" not in text
