"""Attacks on connector base URLs through the running fleet: a tenant's CRM, Jira or Zendesk connector
pointed at a loopback service (SSRF), a base URL with a query suffix that takes over the request path,
and upstream error bodies echoed back to the tenant."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from .fleet import ReliabilityFleet, make_tenant
from .recorder import Recorder, recorder

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]
__all__ = ["recorder"]  # the fixture


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def tenant(fleet: ReliabilityFleet) -> dict[str, str]:
    return make_tenant(fleet.gateway, "connthief")


def connector(kind: str, base_url: str) -> dict[str, Any]:
    if kind == "crm_rest":
        return {"kind": kind, "settings": {"base_url": base_url, "auth": "bearer"}, "secrets": {"token": "t"}}
    settings: dict[str, Any] = {"base_url": base_url, "email": "agent@shop.example"}
    if kind == "jira":
        settings["project_key"] = "SUP"
    return {"kind": kind, "settings": settings, "secrets": {"api_token": "tok"}}


def ticket(key: str, system: str) -> dict[str, Any]:
    return {"subject": "Help", "description": "My order is late.", "idempotency_key": key, "system": system}


def test_connector_base_urls_cannot_reach_the_fleet_network(
    fleet: ReliabilityFleet, tenant: dict[str, str], recorder: Recorder
) -> None:
    port = recorder.port
    loopbacks = [
        f"http://127.0.0.1:{port}",
        f"http://localhost:{port}",
        f"http://[::1]:{port}",
        f"http://127.1:{port}",
        f"http://2130706433:{port}",
        f"http://0x7f000001:{port}",
        f"http://[::ffff:127.0.0.1]:{port}",
        "http://169.254.169.254",
        "http://10.0.0.1",
        "http://0.0.0.0:" + str(port),
    ]
    accepted = []
    with httpx.Client(base_url=fleet.gateway, headers=bearer(tenant["admin_key"]), timeout=30) as client:
        for kind in ("crm_rest", "jira", "zendesk"):
            for number, url in enumerate(loopbacks):
                created = client.post("/v1/connectors", json=connector(kind, url))
                if created.status_code >= 400:
                    assert created.status_code in (400, 422), (kind, url, created.status_code, created.text)
                    continue
                accepted.append((kind, url))
                if kind != "crm_rest":
                    client.post("/v1/tickets", json=ticket(f"ssrf-{kind}-{number}", kind))
                client.delete(f"/v1/connectors/{created.json()['id']}")
    assert not recorder.hits, f"a connector reached a loopback service: {recorder.hits}"
    assert not accepted, f"connectors accepted with a loopback base URL: {accepted}"


def test_base_url_query_or_fragment_cannot_choose_the_path(
    fleet: ReliabilityFleet, tenant: dict[str, str]
) -> None:
    with httpx.Client(base_url=fleet.gateway, headers=bearer(tenant["admin_key"]), timeout=30) as client:
        for kind in ("crm_rest", "jira", "zendesk"):
            for url in (
                "https://crm.shop.example/api?x=",
                "https://crm.shop.example/api#",
                "https://user:pass@crm.shop.example/api",
            ):
                created = client.post("/v1/connectors", json=connector(kind, url))
                if created.status_code < 400:
                    client.delete(f"/v1/connectors/{created.json()['id']}")
                assert created.status_code in (400, 422), (kind, url, created.status_code)
                assert created.json()["error"]["code"] in ("validation_error", "bad_request")


def test_upstream_error_bodies_are_not_echoed(fleet: ReliabilityFleet, tenant: dict[str, str]) -> None:
    # The demo CRM stands for an allow-listed upstream; failing, it answers 503 {"error": "maintenance"}.
    with httpx.Client(base_url=fleet.gateway, headers=bearer(tenant["admin_key"]), timeout=30) as client:
        created = client.post("/v1/connectors", json=connector("jira", fleet.crm.url))
        assert created.status_code == 201, created.text
        fleet.crm_fault.mode = "fail"
        try:
            answer = client.post("/v1/tickets", json=ticket("echo-1", "jira"))
        finally:
            fleet.crm_fault.mode = "ok"
            client.delete(f"/v1/connectors/{created.json()['id']}")
    assert answer.status_code in (502, 503), answer.text
    assert answer.json()["error"]["code"] in ("upstream_error", "upstream_unavailable")
    assert "maintenance" not in answer.text, answer.text
