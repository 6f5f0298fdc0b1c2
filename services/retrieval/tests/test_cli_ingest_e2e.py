"""``switchboard ingest`` against a real retrieval process: upload a directory with progress, re-run
idempotently, and report clear errors."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from switchboard_cli.main import app
from switchboard_shared.testing.processes import ServiceProcess

DEMO_KB = Path(__file__).resolve().parents[3] / "demo" / "kb"
TOKEN = "cli-e2e-token"


@pytest.fixture(scope="module")
def retrieval(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    data = tmp_path_factory.mktemp("retrieval-e2e")
    process = ServiceProcess(
        "switchboard_retrieval",
        {
            "SWITCHBOARD_DATA_DIR": str(data),
            "SWITCHBOARD_INTERNAL_TOKEN": TOKEN,
            "SWITCHBOARD_ENVIRONMENT": "test",
            "RETRIEVAL_DEFAULT_EMBEDDING_MODEL": "minilm",
            "RETRIEVAL_SCHEDULER_INTERVAL_SECONDS": "0",
            "RETRIEVAL_EMBEDDING_THREADS": "1",
        },
        name="retrieval",
    )
    process.start(ready_timeout=120)
    yield process
    process.stop()


@pytest.mark.e2e
def test_cli_ingests_a_directory_and_resyncs_idempotently(retrieval: ServiceProcess, tmp_path: Path) -> None:
    corpus = tmp_path / "kb"
    shutil.copytree(DEMO_KB, corpus)
    runner = CliRunner()
    args = [
        "ingest",
        str(corpus),
        "--kb",
        "help",
        "--retrieval",
        retrieval.url,
        "--tenant",
        "shop",
        "--internal-token",
        TOKEN,
        "--poll",
        "0.1",
        "--public-base-url",
        "https://help.shop.example/",
    ]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "Sync succeeded" in first.output and "Created knowledge base" in first.output
    assert "22 of 22 files uploaded" in first.output
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "0 of 22 files uploaded (the rest unchanged), 0 removed" in again.output
    headers = {"X-Internal-Token": TOKEN, "X-Tenant-ID": "shop"}
    kbs = httpx.get(f"{retrieval.url}/internal/v1/kbs", headers=headers).json()["items"]
    assert [kb["name"] for kb in kbs] == ["help"] and kbs[0]["document_count"] == 22
    jobs = httpx.get(f"{retrieval.url}/internal/v1/jobs", headers=headers).json()["items"]
    assert jobs[0]["chunks_embedded"] == 0 and jobs[0]["counts"]["documents_unchanged"] == 22
    docs_url = f"{retrieval.url}/internal/v1/kbs/{kbs[0]['id']}/documents"
    docs = httpx.get(docs_url, headers=headers).json()["items"]
    assert "en/delivery.md" in {d["uri"] for d in docs}
    sources = httpx.get(f"{retrieval.url}/internal/v1/kbs/{kbs[0]['id']}/sources", headers=headers).json()
    assert [(s["type"], s["name"]) for s in sources] == [("upload", str(corpus.resolve()))]
    hits = httpx.post(
        f"{retrieval.url}/internal/v1/search", headers=headers, json={"query": "как оплатить частями"}
    ).json()["hits"]
    assert hits[0]["url"] == "https://help.shop.example/ru/oplata.md"

    # A file deleted from the folder (and another edited): the next run removes it from the knowledge base.
    (corpus / "ru" / "oplata.md").unlink()
    delivery = corpus / "en" / "delivery.md"
    delivery.write_text(delivery.read_text() + "\n## Drones\n\nDrone delivery is not offered yet.\n")
    third = runner.invoke(app, args)
    assert third.exit_code == 0, third.output
    assert "1 of 21 files uploaded (the rest unchanged), 1 removed from the source" in third.output
    job = httpx.get(f"{retrieval.url}/internal/v1/jobs", headers=headers).json()["items"][0]
    assert job["counts"]["documents_deleted"] == 1 and job["counts"]["documents_updated"] == 1, job
    assert "ru/oplata.md" not in {d["uri"] for d in httpx.get(docs_url, headers=headers).json()["items"]}
    for mode in ("vector", "bm25", "hybrid"):
        hits = httpx.post(
            f"{retrieval.url}/internal/v1/search",
            headers=headers,
            json={"query": "как оплатить частями", "mode": mode, "top_k": 50},
        ).json()["hits"]
        assert all(not (h["url"] or "").endswith("ru/oplata.md") for h in hits), mode


@pytest.mark.e2e
def test_cli_reports_errors(retrieval: ServiceProcess, tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(
        app,
        [
            "ingest",
            str(tmp_path / "nope"),
            "--kb",
            "x",
            "--retrieval",
            retrieval.url,
            "--internal-token",
            TOKEN,
        ],
    )
    assert missing.exit_code == 1 and "does not exist" in missing.output
    wrong_token = runner.invoke(
        app, ["ingest", str(DEMO_KB), "--kb", "x", "--retrieval", retrieval.url, "--internal-token", "wrong"]
    )
    assert wrong_token.exit_code == 1 and "401" in wrong_token.output
    both = runner.invoke(
        app, ["ingest", "x", "--kb", "x", "--retrieval", retrieval.url, "--gateway", "http://g"]
    )
    assert both.exit_code == 2
