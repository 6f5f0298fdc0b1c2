"""Property-based fuzzing with schemathesis, from each service's own OpenAPI document: the gateway's public
API (aggregated ``/openapi.json``, with a tenant admin key) and every service's internal API (with the
internal token and tenant headers). Zero 5xx, and every response must conform to the documented schema
and content type. The number of examples per operation is bounded so the suite stays within budget.

Totals go to ``test-output/reliability/schemathesis.json``.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)

from .fleet import INTERNAL_TOKEN, OPERATOR_TOKEN, ReliabilityFleet, make_tenant

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

EXAMPLES_PER_OPERATION = int(os.environ.get("RELIABILITY_FUZZ_EXAMPLES", "12"))
TOTALS: dict[str, dict[str, Any]] = {}
# Findings turned into regression tests (test_fuzz_regressions.py) but not fixed yet: operation -> test.
# Every earlier finding is fixed, so nothing is excused.
KNOWN_FINDINGS: dict[str, str] = {}


def new_findings(run: FuzzRun) -> dict[str, str]:
    return {label: finding for label, finding in run.findings.items() if label not in KNOWN_FINDINGS}


@dataclass
class FuzzRun:
    target: str
    operations: int = 0
    requests: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    findings: dict[str, str] = field(default_factory=dict)


def make_exercise(
    run: FuzzRun, label: str, strategy: Any, base_url: str, headers: dict[str, str], checks: list[Any]
) -> Any:
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def exercise(case: Any) -> None:
        # Credentials generated from the document's security schemes would replace the run's own key.
        for name in list(case.headers or {}):
            if name.lower() in ("authorization", "x-api-key"):
                del case.headers[name]
        try:
            response = case.call(base_url=base_url, headers=headers, timeout=30)
        except Exception as exc:  # a refused or reset connection is a finding too
            run.findings.setdefault(label, f"transport: {type(exc).__name__}: {str(exc)[:200]}")
            return
        run.requests += 1
        run.statuses[str(response.status_code)] += 1
        try:
            case.validate_response(response, checks=checks)
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis raises a FailureGroup
            if label not in run.findings:
                run.findings[label] = f"{response.status_code}: {str(exc)[:600]}"

    return exercise


def fuzz(target: str, document: dict[str, Any], base_url: str, headers: dict[str, str]) -> FuzzRun:
    run = FuzzRun(target)
    # /healthz, /readyz and /metrics are operational: /readyz answering 503 is its documented purpose.
    document = {
        **document,
        "paths": {p: v for p, v in document["paths"].items() if p not in ("/healthz", "/readyz", "/metrics")},
    }
    schema = schemathesis.openapi.from_dict(document)
    checks = [not_a_server_error, response_schema_conformance, content_type_conformance]
    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        run.operations += 1
        strategy = operation.as_strategy(headers=headers)

        exercise = make_exercise(run, label, strategy, base_url, headers, checks)
        exercise()
    TOTALS[target] = {
        "operations": run.operations,
        "requests": run.requests,
        "statuses": dict(run.statuses),
        "findings": run.findings,
        "examples_per_operation": EXAMPLES_PER_OPERATION,
    }
    return run


@pytest.fixture(scope="module")
def fuzz_tenant(fleet: ReliabilityFleet) -> dict[str, str]:
    """A tenant whose limits are off (0), so the examples reach the services instead of a 429."""
    tenant = make_tenant(fleet.gateway, "fuzz")
    operator = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    limits = {"end_user_requests_per_minute": 0, "daily_message_budget": -1, "daily_token_budget": -1}
    patched = httpx.patch(f"{fleet.gateway}/v1/admin/tenants/fuzz", json=limits, headers=operator, timeout=10)
    assert patched.status_code == 200, patched.text
    key = httpx.post(
        f"{fleet.gateway}/v1/admin/tenants/fuzz/keys",
        json={"scope": "admin", "name": "fuzz-unlimited", "requests_per_minute": 0},
        headers=operator,
        timeout=10,
    )
    assert key.status_code == 201, key.text
    return {**tenant, "admin_key": str(key.json()["key"])}


def test_public_api(fleet: ReliabilityFleet, fuzz_tenant: dict[str, str], output_dir: str) -> None:
    document = httpx.get(f"{fleet.gateway}/openapi.json", timeout=10).json()
    headers = {"Authorization": f"Bearer {fuzz_tenant['admin_key']}", "X-End-User-ID": "fuzz-user"}
    run = fuzz("gateway (public)", document, fleet.gateway, headers)
    write_totals(output_dir)
    assert run.operations >= 40
    assert not new_findings(run), json.dumps(new_findings(run), indent=1)


@pytest.mark.parametrize("service", ["chat-a", "retrieval", "integrations", "analytics"])
def test_internal_api(
    fleet: ReliabilityFleet, fuzz_tenant: dict[str, str], service: str, output_dir: str
) -> None:
    base = fleet.url(service)
    document = httpx.get(f"{base}/openapi.json", timeout=10).json()
    headers = {"X-Internal-Token": INTERNAL_TOKEN, "X-Tenant-ID": "fuzz", "X-Key-Scope": "admin"}
    if service != "analytics":  # reports refuse a caller acting for an end user (a 403 for every example)
        headers["X-End-User-ID"] = "fuzz-user"
    run = fuzz(f"{service} (own document)", document, base, headers)
    write_totals(output_dir)
    assert run.operations > 0
    assert not new_findings(run), json.dumps(new_findings(run), indent=1)


def write_totals(output_dir: str) -> None:
    with open(os.path.join(output_dir, "schemathesis.json"), "w") as handle:
        json.dump(TOTALS, handle, indent=2)
