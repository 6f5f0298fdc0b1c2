"""URL, sitemap and Confluence sources against a local HTTP server speaking their wire formats; uploads;
bad input answered with clear 4xx; the SSRF guard."""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
import shutil
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

_spec = importlib.util.spec_from_file_location("retrieval_pdfutil", Path(__file__).parent / "pdfutil.py")
assert _spec and _spec.loader
pdfutil = importlib.util.module_from_spec(_spec)
sys.modules["retrieval_pdfutil"] = pdfutil
_spec.loader.exec_module(pdfutil)


def page(title: str, body: str) -> str:
    return f"<html><head><title>{title}</title></head><body><nav>Site menu</nav><main><h1>{title}</h1>{body}</main></body></html>"


@pytest.mark.asyncio
async def test_sitemap_crawl_same_site_limits_and_robots(sqlite_service: Any, site: Any) -> None:
    svc = sqlite_service
    site.add("/robots.txt", "User-agent: *\nDisallow: /private/\n", "text/plain")
    site.add(
        "/sitemap.xml",
        f"""<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <sitemap><loc>{site.base}/sitemap-docs.xml</loc></sitemap>
  <sitemap><loc>https://elsewhere.example/sitemap.xml</loc></sitemap>
</sitemapindex>""",
        "application/xml",
    )
    site.add(
        "/sitemap-docs.xml",
        f"""<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
<url><loc>{site.base}/docs/builds.html</loc></url>
<url><loc>{site.base}/docs/domains.html#top</loc></url>
<url><loc>{site.base}/private/secret.html</loc></url>
<url><loc>https://other.example/page.html</loc></url>
<url><loc>{site.base}/docs/missing.html</loc></url>
<url><loc>{site.base}/docs/extra.html</loc></url>
</urlset>""",
        "application/xml",
    )
    site.add("/docs/builds.html", page("Builds", "<p>Cancel a running build from the build page.</p>"))
    site.add(
        "/docs/domains.html",
        page("Custom domains", "<h2>CNAME</h2><p>Add a CNAME record for docs.example.com.</p>"),
    )
    site.add("/private/secret.html", page("Secret", "<p>must never be fetched</p>"))
    site.add("/docs/extra.html", page("Extra", "<p>beyond the page limit</p>"))
    kb = await svc.create_kb("crawl")
    source, job = await svc.add_source(
        kb["id"], {"type": "sitemap", "config": {"url": f"{site.base}/sitemap.xml", "max_pages": 3}}
    )
    assert job["status"] == "succeeded", job
    assert job["documents_seen"] == 3 and job["documents_failed"] == 1
    assert job["failures"] == [{"document": f"{site.base}/docs/missing.html", "reason": "HTTP 404"}]
    fetched = [path for path, _ in site.requests]
    assert "/private/secret.html" not in fetched and "/docs/extra.html" not in fetched
    assert all(headers.get("User-Agent") == "SwitchboardBot/0.1" for _, headers in site.requests)
    hits = await svc.search(kb["id"], "how do I point my domain with a CNAME record")
    assert hits[0]["url"] == f"{site.base}/docs/domains.html" and hits[0]["title"] == "Custom domains"
    assert hits[0]["heading_path"] == ["CNAME"] and "Site menu" not in hits[0]["text"]

    # A page removed from the sitemap is pruned on the next sync.
    site.add(
        "/sitemap-docs.xml",
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>{site.base}/docs/builds.html</loc></url></urlset>',
        "application/xml",
    )
    again = await svc.sync(kb["id"], source["id"])
    assert again["counts"]["documents_deleted"] == 1 and again["counts"]["documents_unchanged"] == 1


@pytest.mark.asyncio
async def test_malformed_sitemap_fails_the_job_with_the_reason_and_prunes_nothing(
    sqlite_service: Any, site: Any
) -> None:
    svc = sqlite_service
    site.add(
        "/sitemap.xml",
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>{site.base}/a.html</loc></url></urlset>',
        "application/xml",
    )
    site.add("/a.html", page("A", "<p>Alpha content about refunds.</p>"))
    kb = await svc.create_kb("crawl")
    source, job = await svc.add_source(
        kb["id"], {"type": "sitemap", "config": {"url": f"{site.base}/sitemap.xml"}}
    )
    assert job["status"] == "succeeded"
    site.add("/sitemap.xml", "<urlset><url><loc>broken", "application/xml")
    failed = await svc.sync(kb["id"], source["id"])
    assert failed["status"] == "failed" and failed["error"].startswith("malformed sitemap")
    assert (await svc.search(kb["id"], "refunds"))[0]["title"] == "A"
    sources = (await svc.client.get(f"/internal/v1/kbs/{kb['id']}/sources")).json()
    assert (
        sources[0]["last_sync_status"] == "failed" and "malformed" in sources[0]["last_sync_result"]["error"]
    )


@pytest.mark.asyncio
async def test_single_url_pdf(sqlite_service: Any, site: Any) -> None:
    svc = sqlite_service
    site.add(
        "/manual.pdf",
        pdfutil.make_pdf(["The kettle warranty lasts 24 months."], "Kettle manual"),
        "application/pdf",
    )
    kb = await svc.create_kb("web")
    _, job = await svc.add_source(kb["id"], {"type": "url", "config": {"url": f"{site.base}/manual.pdf"}})
    assert job["status"] == "succeeded" and job["counts"]["added"] == 1
    hits = await svc.search(kb["id"], "kettle warranty")
    assert hits[0]["title"] == "Kettle manual" and hits[0]["heading_path"] == ["Page 1"]


@pytest.mark.asyncio
async def test_ssrf_guard_refuses_private_addresses(service_with: Any, site: Any) -> None:
    async with service_with(url_allowlist=[]) as svc:
        kb = await svc.create_kb("web")
        site.add("/a.html", page("A", "<p>x</p>"))
        _, job = await svc.add_source(kb["id"], {"type": "url", "config": {"url": f"{site.base}/a.html"}})
        assert job["status"] == "failed" and "non-public address" in job["error"]
        metadata = {"type": "url", "config": {"url": "http://169.254.169.254/latest/meta-data"}, "name": "m"}
        _, job = await svc.add_source(kb["id"], metadata)
        assert job["status"] == "failed" and "non-public address" in job["error"]
        assert site.requests == []


def confluence_page(page_id: str, title: str, body: str, ancestors: list[str]) -> dict[str, Any]:
    return {
        "id": page_id,
        "type": "page",
        "status": "current",
        "title": title,
        "ancestors": [{"id": str(i), "title": t} for i, t in enumerate(ancestors)],
        "body": {"storage": {"value": body, "representation": "storage"}},
        "version": {"number": 3},
        "_links": {"webui": f"/spaces/HELP/pages/{page_id}/{title.replace(' ', '+')}"},
    }


@pytest.mark.asyncio
@pytest.mark.parametrize("deployment", ["cloud", "datacenter"])
async def test_confluence_space_pages_with_breadcrumbs(
    sqlite_service: Any, site: Any, deployment: str
) -> None:
    svc = sqlite_service
    context = "/wiki" if deployment == "cloud" else "/confluence"
    api = f"{context}/rest/api/content"
    first = (
        f"{api}?spaceKey=HELP&type=page&status=current&expand=body.storage,ancestors,version&limit=50&start=0"
    )
    second = f"{api}?spaceKey=HELP&type=page&status=current&expand=body.storage,ancestors,version&limit=50&start=50"
    site.add(
        first,
        json.dumps(
            {
                "results": [
                    confluence_page(
                        "101",
                        "Returns",
                        "<p>Return within 30 days.</p><h2>Refund timing</h2><p>Refunds take 3 working days.</p>",
                        ["Help centre", "Orders"],
                    ),
                ],
                "start": 0,
                "limit": 50,
                "size": 1,
                "_links": {
                    "base": f"{site.base}{context}",
                    "context": context,
                    "next": second.removeprefix(context),
                },
            }
        ),
        "application/json",
    )
    site.add(
        second,
        json.dumps(
            {
                "results": [
                    confluence_page(
                        "102", "Delivery", "<p>Courier delivery costs 349 roubles.</p>", ["Help centre"]
                    ),
                    {"id": "103", "title": "No body"},
                ],
                "start": 50,
                "limit": 50,
                "size": 2,
                "_links": {"base": f"{site.base}{context}", "context": context},
            }
        ),
        "application/json",
    )
    config: dict[str, Any] = {
        "base_url": f"{site.base}{context}",
        "space_key": "HELP",
        "deployment": deployment,
        "api_token": "tok-123",
    }
    if deployment == "cloud":
        config["email"] = "bot@example.com"
    kb = await svc.create_kb("wiki")
    created = (
        await svc.client.post(
            f"/internal/v1/kbs/{kb['id']}/sources", json={"type": "confluence", "config": config}
        )
    ).json()
    assert created["source"]["config"]["api_token"] == "***"
    job = await svc.wait_job(created["job"]["id"])
    assert job["status"] == "succeeded", job
    assert job["documents_seen"] == 3 and job["documents_failed"] == 1
    auth = site.requests[0][1]["Authorization"]
    if deployment == "cloud":
        assert auth == "Basic " + base64.b64encode(b"bot@example.com:tok-123").decode()
    else:
        assert auth == "Bearer tok-123"
    assert parse_qs(urlsplit(site.requests[0][0]).query)["spaceKey"] == ["HELP"]
    hits = await svc.search(kb["id"], "how long until my refund arrives")
    assert hits[0]["title"] == "Returns"
    assert hits[0]["heading_path"] == ["Help centre", "Orders", "Refund timing"]
    assert hits[0]["url"] == f"{site.base}{context}/spaces/HELP/pages/101/Returns"


@pytest.mark.asyncio
async def test_confluence_errors_are_recorded(sqlite_service: Any, site: Any) -> None:
    svc = sqlite_service
    kb = await svc.create_kb("wiki")
    config = {"base_url": f"{site.base}/wiki", "space_key": "HELP", "email": "a@b.c", "api_token": "bad"}
    api = "/wiki/rest/api/content?spaceKey=HELP&type=page&status=current&expand=body.storage,ancestors,version&limit=50&start=0"
    site.add(api, '{"message": "unauthorized"}', "application/json", status=401)
    _, job = await svc.add_source(kb["id"], {"type": "confluence", "config": config})
    assert job["status"] == "failed" and "refused the credentials" in job["error"]
    site.add(api, '{"results": "nope"}', "application/json")
    _, job = await svc.add_source(kb["id"], {"type": "confluence", "config": config, "name": "again"})
    assert job["status"] == "failed" and job["error"].startswith("malformed Confluence response")


@pytest.mark.asyncio
async def test_uploads_and_bad_input(service: Any) -> None:
    svc = service
    kb = await svc.create_kb("files")
    files = [
        ("files", ("faq.csv", b"question,answer\nDo you ship to Minsk?,Yes in 3-6 days.\n", "text/csv")),
        ("files", ("guide.md", b"# Guide\n\nThe kettle boils in 90 seconds.\n", "text/markdown")),
        ("files", ("broken.pdf", b"%PDF-1.4 not really", "application/pdf")),
    ]
    response = await svc.client.post(f"/internal/v1/kbs/{kb['id']}/files", files=files)
    assert response.status_code == 202, response.text
    job = await svc.wait_job(response.json()["job"]["id"])
    assert job["status"] == "succeeded" and job["documents_failed"] == 1
    assert job["failures"][0]["document"] == "broken.pdf" and "PDF" in job["failures"][0]["reason"]
    assert (await svc.search(kb["id"], "shipping to Minsk"))[0]["text"].startswith("Q: Do you ship to Minsk?")
    failed_docs = (
        await svc.client.get(f"/internal/v1/kbs/{kb['id']}/documents", params={"status": "failed"})
    ).json()
    assert [d["name"] for d in failed_docs["items"]] == ["broken.pdf"]

    bad = await svc.client.post(
        f"/internal/v1/kbs/{kb['id']}/files", files=[("files", ("x.exe", b"MZ", "application/octet-stream"))]
    )
    assert bad.status_code == 415 and bad.json()["error"]["code"] == "unsupported_media_type"
    big = b"a" * (svc.settings.max_upload_bytes + 1)
    too_big = await svc.client.post(
        f"/internal/v1/kbs/{kb['id']}/files", files=[("files", ("big.txt", big, "text/plain"))]
    )
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "payload_too_large"
    assert (await svc.client.post("/internal/v1/kbs/nope/files", files=files[:1])).status_code == 404

    assert (await svc.client.post("/internal/v1/kbs", json={"name": "files"})).status_code == 409
    assert (await svc.client.post("/internal/v1/kbs", json={"name": ""})).status_code == 422
    assert (
        await svc.client.post("/internal/v1/kbs", json={"name": "x", "embedding_model": "gpt"})
    ).status_code == 422
    no_path = await svc.client.post(
        f"/internal/v1/kbs/{kb['id']}/sources", json={"type": "files", "config": {}}
    )
    assert no_path.status_code == 400 and "path" in no_path.json()["error"]["message"]
    web_files = await svc.client.post(
        f"/internal/v1/kbs/{kb['id']}/sources",
        json={"type": "files", "config": {"path": "https://x.example/a"}},
    )
    assert web_files.status_code == 400
    ftp = await svc.client.post(
        f"/internal/v1/kbs/{kb['id']}/sources", json={"type": "url", "config": {"url": "ftp://x"}}
    )
    assert ftp.status_code == 400
    wrong_type = await svc.client.post(
        f"/internal/v1/kbs/{kb['id']}/sources", json={"type": "gopher", "config": {}}
    )
    assert wrong_type.status_code == 422
    no_creds = await svc.client.post(
        f"/internal/v1/kbs/{kb['id']}/sources",
        json={"type": "confluence", "config": {"base_url": "https://x.atlassian.net/wiki", "space_key": "A"}},
    )
    assert no_creds.status_code == 400 and "api_token" in no_creds.json()["error"]["message"]
    absent = f"{svc.runtime.settings.files_roots[0]}/nonexistent/dir"
    missing_dir = await svc.client.post(
        f"/internal/v1/kbs/{kb['id']}/sources", json={"type": "files", "config": {"path": absent}}
    )
    job = await svc.wait_job(missing_dir.json()["job"]["id"])
    assert job["status"] == "failed" and "does not exist" in job["error"]
    assert (await svc.client.get("/internal/v1/jobs/nope")).status_code == 404
    assert (
        await svc.client.post(f"/internal/v1/kbs/{kb['id']}/search", json={"query": ""})
    ).status_code == 422
    no_tenant = await svc.client.get("/internal/v1/kbs", headers={"X-Tenant-ID": ""})
    assert no_tenant.status_code == 400
    no_token = await svc.client.get("/internal/v1/kbs", headers={"X-Internal-Token": "wrong"})
    assert no_token.status_code == 401


@pytest.mark.asyncio
async def test_local_paths_only_under_files_roots(service_with: Any, demo_copy: Path) -> None:
    async with service_with(files_roots=[str(demo_copy / "en")]) as svc:
        kb = await svc.create_kb("roots")
        outside = await svc.client.post(
            f"/internal/v1/kbs/{kb['id']}/sources",
            json={"type": "files", "config": {"path": str(demo_copy / "en" / "..")}},
        )
        assert outside.status_code == 403 and outside.json()["error"]["code"] == "forbidden"
        etc = await svc.client.post(
            f"/internal/v1/kbs/{kb['id']}/sources", json={"type": "faq", "config": {"path": "file:///etc"}}
        )
        assert etc.status_code == 403
        _, job = await svc.add_source(
            kb["id"], {"type": "faq", "config": {"path": f"file://{demo_copy}/en/faq.csv"}}
        )
        assert job["status"] == "succeeded" and job["counts"]["added"] == 4


@pytest.mark.asyncio
async def test_upload_while_a_sync_runs_is_not_lost(sqlite_service: Any, demo_copy: Path) -> None:
    """Files uploaded in two requests: the second arrives while the first one's sync runs; both are indexed."""
    svc = sqlite_service
    kb = await svc.create_kb("batches")
    first = [
        ("files", (p.name, p.read_bytes(), "text/markdown")) for p in sorted((demo_copy / "en").glob("*.md"))
    ]
    second = [
        ("files", (p.name, p.read_bytes(), "text/markdown")) for p in sorted((demo_copy / "ru").glob("*.md"))
    ]
    one = await svc.client.post(f"/internal/v1/kbs/{kb['id']}/files", files=first)
    assert one.status_code == 202, one.text
    for _ in range(1000):  # the second request must arrive after the running sync listed the files
        job = (await svc.client.get(f"/internal/v1/jobs/{one.json()['job']['id']}")).json()
        if job["status"] != "queued" and job["documents_seen"] > 0:
            break
        await asyncio.sleep(0.002)
    assert job["status"] == "running"
    two = await svc.client.post(f"/internal/v1/kbs/{kb['id']}/files", files=second)
    assert two.status_code == 202, two.text
    for job_id in dict.fromkeys([one.json()["job"]["id"], two.json()["job"]["id"]]):
        assert (await svc.wait_job(job_id, timeout=120))["status"] == "succeeded"
    docs = (await svc.client.get(f"/internal/v1/kbs/{kb['id']}/documents", params={"limit": 100})).json()
    assert sorted(d["name"] for d in docs["items"]) == sorted(name for _, (name, *_) in first + second)


@pytest.mark.asyncio
async def test_chained_urls_and_tenant_folders(service_with: Any, demo_copy: Path, tmp_path: Path) -> None:
    """Every link of a chained fsspec URL is checked; '{tenant}' in a root confines each tenant to its own
    folder; the service's own data directory is never a source, even inside a root."""
    own = tmp_path / "tenants" / "acme"
    shutil.copytree(demo_copy / "en", own)
    roots = [str(tmp_path / "tenants" / "{tenant}"), str(demo_copy / "en")]
    async with service_with(files_roots=roots) as svc:
        kb = await svc.create_kb("chains")
        for path in (
            f"simplecache::file://{demo_copy}/en/faq.csv",
            f"zip://faq.csv::file://{demo_copy}/en/a.zip",
            "simplecache::http://127.0.0.1:9/faq.csv",
            "memory://faq.csv",
            f"{tmp_path}/tenants/*/faq.csv",
        ):
            refused = await svc.client.post(
                f"/internal/v1/kbs/{kb['id']}/sources", json={"type": "faq", "config": {"path": path}}
            )
            assert refused.status_code == 403, (path, refused.text)
            assert refused.json()["error"]["code"] == "forbidden"
        _, job = await svc.add_source(kb["id"], {"type": "faq", "config": {"path": f"{own}/faq.csv"}})
        assert job["status"] == "succeeded" and job["counts"]["added"] == 4
        rival = {"X-Tenant-ID": "rival"}
        rival_kb = (await svc.client.post("/internal/v1/kbs", json={"name": "r"}, headers=rival)).json()
        other = await svc.client.post(
            f"/internal/v1/kbs/{rival_kb['id']}/sources",
            json={"type": "faq", "config": {"path": f"{own}/faq.csv"}},
            headers=rival,
        )
        assert other.status_code == 403, other.text
    async with service_with(files_roots=[str(tmp_path)]) as svc:
        kb = await svc.create_kb("storage")
        settings = svc.runtime.settings
        for path in (f"{settings.data_dir}/**/*.md", settings.uploads_dir(), f"file://{settings.data_dir}"):
            refused = await svc.client.post(
                f"/internal/v1/kbs/{kb['id']}/sources", json={"type": "files", "config": {"path": path}}
            )
            assert refused.status_code == 403, (path, refused.text)
