"""Attack: page parameters beyond what the database's integers hold (``offset=2**63``) on every list route.

Every list route bounds ``limit`` and ``offset`` with the shared schema: too large is a 422 in the one error
shape, never a 500 (SQLite raised OverflowError: ``make run``'s embedded services answered 500), and never
reaches the database; a large offset within the bound is an empty page."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from switchboard_shared.testing.processes import ServiceProcess, start_all

from .fleet import INTERNAL_TOKEN, OPERATOR_TOKEN, ReliabilityFleet

# The list routes of each service, as the gateway forwards them (internal token, tenant header).
SQLITE_LIST_ROUTES = {
    "chat": ["/internal/v1/conversations"],
    "integrations": ["/internal/v1/handoffs", "/internal/v1/tickets"],
    "retrieval": ["/internal/v1/kbs", "/internal/v1/jobs"],
}

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]


def list_routes(fleet: ReliabilityFleet) -> list[tuple[str, dict[str, str]]]:
    server = {"Authorization": f"Bearer {fleet.demo['server_key']}"}
    kb = fleet.kb_id
    with httpx.Client(base_url=fleet.gateway, headers=server, timeout=30) as client:
        document = client.get(f"/v1/kbs/{kb}/documents", params={"limit": 1}).json()["items"][0]["id"]
    return [
        ("/v1/conversations", server),
        ("/v1/kbs", server),
        ("/v1/jobs", server),
        (f"/v1/kbs/{kb}/documents", server),
        (f"/v1/kbs/{kb}/documents/{document}/chunks", server),
        ("/v1/handoffs", server),
        ("/v1/tickets", server),
        ("/v1/admin/tenants", {"Authorization": f"Bearer {OPERATOR_TOKEN}"}),
    ]


@pytest.mark.parametrize(
    "params",
    [
        {"offset": str(2**63)},
        {"offset": "99999999999999999999999999"},
        {"offset": str(2**31)},
        {"limit": str(2**63)},
        {"offset": "-1"},
    ],
)
def test_page_parameters_out_of_range_are_refused(fleet: ReliabilityFleet, params: dict[str, str]) -> None:
    failures = []
    for path, headers in list_routes(fleet):
        response = httpx.get(f"{fleet.gateway}{path}", params=params, headers=headers, timeout=30)
        if response.status_code != 422 or response.json().get("error", {}).get("code") != "validation_error":
            failures.append(f"{path}: {response.status_code} {response.text[:200]}")
    assert not failures, "\n".join(failures)


def test_a_large_offset_within_the_bound_is_an_empty_page(fleet: ReliabilityFleet) -> None:
    for path, headers in list_routes(fleet):
        response = httpx.get(
            f"{fleet.gateway}{path}", params={"offset": "100000"}, headers=headers, timeout=30
        )
        assert response.status_code == 200, (path, response.text[:300])
        assert response.json()["items"] == [], path


@pytest.fixture(scope="module")
def embedded_services() -> Iterator[dict[str, str]]:
    """Chat, integrations and retrieval on their embedded SQLite defaults, as ``make run`` starts them."""
    data_dir = Path(tempfile.mkdtemp(prefix="sb-sqlite-pages-"))
    env = {
        "SWITCHBOARD_DATA_DIR": str(data_dir),
        "SWITCHBOARD_ENVIRONMENT": "test",
        "SWITCHBOARD_INTERNAL_TOKEN": INTERNAL_TOKEN,
        "SWITCHBOARD_REDIS_URL": "",
        "RETRIEVAL_SCHEDULER_INTERVAL_SECONDS": "0",
        "RETRIEVAL_DEFAULT_EMBEDDING_MODEL": "minilm",
        "RETRIEVAL_EMBEDDING_THREADS": "1",
    }
    processes = {name: ServiceProcess.of(name, env) for name in SQLITE_LIST_ROUTES}
    try:
        failures = start_all(processes, timeout=180.0)
        assert not failures, failures
        yield {name: process.url for name, process in processes.items()}
    finally:
        for process in processes.values():
            process.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.mark.parametrize("offset", [str(2**63), str(2**64 + 1)])
def test_sqlite_list_routes_refuse_offsets_past_int64(embedded_services: dict[str, str], offset: str) -> None:
    headers = {"X-Internal-Token": INTERNAL_TOKEN, "X-Tenant-ID": "demo", "X-Key-Scope": "server"}
    failures = []
    for name, paths in SQLITE_LIST_ROUTES.items():
        for path in paths:
            response = httpx.get(
                f"{embedded_services[name]}{path}", params={"offset": offset}, headers=headers, timeout=30
            )
            if response.status_code != 422:
                failures.append(f"{name} {path}: {response.status_code} {response.text[:200]}")
    assert not failures, "\n".join(failures)
