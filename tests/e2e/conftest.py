"""The full fleet as real processes for end-to-end tests: gateway, chat, retrieval, integrations and
analytics (and integrations' demo CRM) on free ports with a temporary data directory, plus a demo tenant
bootstrapped through the gateway's admin API.

Services that cannot start (not built yet, or failing) are recorded, and tests that need them skip with
the reason; the gateway must start. Set ``E2E_REQUIRE_FLEET=1`` to turn those skips into failures.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from switchboard_cli.demo import bootstrap_demo
from switchboard_shared.registry import DEMO_CRM_MODULE, SERVICE_NAMES
from switchboard_shared.testing.processes import ServiceProcess, service_env, start_all
from switchboard_shared.testing.servers import free_port

OPERATOR_TOKEN = "e2e-operator-token"
INTERNAL_TOKEN = "e2e-internal-token"


@dataclass
class Fleet:
    data_dir: Path
    env: dict[str, str]
    processes: dict[str, ServiceProcess] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    demo: dict[str, str] = field(default_factory=dict)

    @property
    def gateway(self) -> str:
        return self.processes["gateway"].url

    def require(self, *names: str) -> None:
        missing = {
            name: self.failures.get(name, "not started") for name in names if name not in self.processes
        }
        if missing:
            reason = "; ".join(f"{name}: {why.splitlines()[0][:200]}" for name, why in missing.items())
            if os.environ.get("E2E_REQUIRE_FLEET") == "1":
                pytest.fail(f"fleet incomplete: {reason}")
            pytest.skip(f"fleet incomplete: {reason}")

    def logs(self, name: str) -> str:
        return self.processes[name].logs()


def fleet_env(data_dir: Path, ports: dict[str, int], **extra: str) -> dict[str, str]:
    """The end-to-end fleet's environment: its tokens, where each service (name → port) listens."""
    return service_env(
        data_dir=data_dir,
        urls={name: f"http://127.0.0.1:{port}" for name, port in ports.items()},
        operator_token=OPERATOR_TOKEN,
        internal_token=INTERNAL_TOKEN,
        ANALYTICS_PSEUDONYM_SALT="e2e-pseudonym-salt",
        **extra,
    )


@pytest.fixture(scope="session")
def fleet() -> Iterator[Fleet]:
    data_dir = Path(tempfile.mkdtemp(prefix="sb-e2e-"))
    ports = {name: free_port() for name in SERVICE_NAMES}
    crm_port = free_port()
    env = fleet_env(
        data_dir,
        ports,
        INTEGRATIONS_DEMO_CRM_URL=f"http://127.0.0.1:{crm_port}",
        # Tenants of these tests point their openai-compatible provider at a llama.cpp server on loopback.
        CHAT_URL_ALLOWLIST='["127.0.0.1"]',
        # Suggestions that could not reach retrieval are retried within seconds, not minutes.
        CHAT_SUGGESTION_RETRY_SECONDS="0.5",
        CHAT_SUGGESTION_RETRY_MAX_SECONDS="2",
    )
    processes = {name: ServiceProcess.of(name, env, port=ports[name]) for name in SERVICE_NAMES}
    # The demo CRM (integrations' stand-in for a company's CRM), wired to the demo tenant.
    processes["crm"] = ServiceProcess(DEMO_CRM_MODULE, env, port=crm_port, name="crm")
    failures = start_all(processes)
    running = Fleet(data_dir, env)
    running.failures = failures
    running.processes = {name: p for name, p in processes.items() if name not in failures}
    try:
        if "gateway" in failures:
            pytest.fail(f"the gateway did not start:\n{failures['gateway'][-3000:]}")
        running.demo = bootstrap_demo(running.gateway, OPERATOR_TOKEN)
        yield running
    finally:
        for process in processes.values():
            process.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def tenant_server_key(gateway: str, tenant_id: str) -> str:
    """A fresh tenant (for tests whose numbers must not see the others' traffic) and a server key of it."""
    operator = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    created = httpx.post(
        f"{gateway}/v1/admin/tenants", json={"id": tenant_id, "name": tenant_id}, headers=operator
    )
    assert created.status_code == 201, created.text
    key = httpx.post(
        f"{gateway}/v1/admin/tenants/{tenant_id}/keys",
        json={"scope": "server", "name": "e2e"},
        headers=operator,
    )
    assert key.status_code == 201, key.text
    return str(key.json()["key"])


def tenant_widget_key(gateway: str, tenant_id: str, origin: str) -> str:
    """A widget key of the tenant, allowed from ``origin``."""
    created = httpx.post(
        f"{gateway}/v1/admin/tenants/{tenant_id}/keys",
        json={"scope": "widget", "name": "e2e-widget", "allowed_origins": [origin]},
        headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"},
    )
    assert created.status_code == 201, created.text
    return str(created.json()["key"])


def ingest_article(client: httpx.Client, filename: str, markdown: str) -> None:
    """A knowledge base holding one Markdown article, ingested through the public API (waits for the job)."""
    ingest_markdown(client, {filename: markdown}, embedding_model="minilm")


def ingest_markdown(
    client: httpx.Client,
    articles: dict[str, str],
    *,
    embedding_model: str | None = None,
    timeout: float = 120,
) -> None:
    """A knowledge base holding these Markdown articles (file name → text), ingested through the public API
    (waits for the job); ``embedding_model`` None: the fleet's default."""
    model = {"embedding_model": embedding_model} if embedding_model else {}
    kb = client.post("/v1/kbs", json={"name": "help", **model})
    assert kb.status_code == 201, kb.text
    files = [("files", (name, text.encode(), "text/markdown")) for name, text in articles.items()]
    upload = client.post(f"/v1/kbs/{kb.json()['id']}/files", files=files)
    assert upload.status_code == 202, upload.text
    deadline = time.monotonic() + timeout
    while (job := client.get(f"/v1/jobs/{upload.json()['job']['id']}").json())["status"] not in (
        "succeeded",
        "failed",
    ):
        assert time.monotonic() < deadline, job
        time.sleep(0.5)
    assert job["status"] == "succeeded", job
