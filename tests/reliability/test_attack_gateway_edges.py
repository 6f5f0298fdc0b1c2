"""Attacks on the gateway's edges: a key used after it expired, default secrets outside development,
anonymous widget traffic rotating ``X-Anonymous-ID`` past the per-end-user limit, the public ``/metrics``,
and the widget's anonymous id made from a non-cryptographic random source."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from switchboard_shared.testing.servers import free_port

from .fleet import OPERATOR_TOKEN, ReliabilityFleet, make_tenant

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


def test_an_expired_key_stops_working_at_once(fleet: ReliabilityFleet) -> None:
    expires = datetime.now(UTC) + timedelta(seconds=4)
    created = httpx.post(
        f"{fleet.gateway}/v1/admin/tenants/demo/keys",
        json={"scope": "server", "name": "short-lived", "expires_at": expires.isoformat()},
        headers=OPERATOR,
        timeout=10,
    )
    assert created.status_code == 201, created.text
    headers = {"Authorization": f"Bearer {created.json()['key']}"}
    for base in (fleet.gateway, fleet.gateway_b):
        assert httpx.get(f"{base}/v1/conversations", headers=headers, timeout=10).status_code == 200
    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.3)
    for base in (fleet.gateway, fleet.gateway_b):
        late = httpx.get(f"{base}/v1/conversations", headers=headers, timeout=10)
        assert late.status_code == 401, (base, late.status_code, "an expired key was served from the cache")


@pytest.mark.parametrize(
    ("module", "missing"),
    [("switchboard_gateway", "admin_token"), ("switchboard_analytics", "pseudonym_salt")],
)
@pytest.mark.parametrize("environment", ["test", "production"])
def test_default_secrets_only_in_development(
    fleet: ReliabilityFleet, module: str, missing: str, environment: str
) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SWITCHBOARD_", "GATEWAY_", "ANALYTICS_"))
    }
    env.update(
        {
            "SWITCHBOARD_ENVIRONMENT": environment,
            "SWITCHBOARD_INTERNAL_TOKEN": "a-real-internal-token",
            "SWITCHBOARD_DATA_DIR": str(fleet.data_dir / f"secrets-{uuid.uuid4().hex[:6]}"),
        }
    )
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", module, "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    refusal = f"{missing} must be set to a real secret"
    try:
        errors = process.communicate(timeout=90)[1]
    except subprocess.TimeoutExpired:
        # Still running after 90 s: it must at least not serve (it would answer /healthz by now).
        try:
            listening = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            listening = False
        process.kill()
        errors = process.communicate()[1]
        assert not listening, f"{module} serves with a default {missing} in {environment}"
    assert process.returncode != 0, f"{module} started with a default {missing} in {environment}"
    assert refusal in errors, errors[-2000:]


def test_rotating_the_anonymous_id_does_not_escape_the_limits(fleet: ReliabilityFleet) -> None:
    keys = make_tenant(fleet.gateway, "rotators")
    unlimited = httpx.post(
        f"{fleet.gateway}/v1/admin/tenants/rotators/keys",
        json={
            "scope": "widget",
            "name": "no key limit",
            "allowed_origins": ["https://shop.example"],
            "requests_per_minute": 0,
        },
        headers=OPERATOR,
        timeout=10,
    )
    assert unlimited.status_code == 201, unlimited.text
    assert keys["widget_key"] != unlimited.json()["key"]
    statuses = []
    with httpx.Client(base_url=fleet.gateway, timeout=10) as client:
        for number in range(400):
            response = client.get(
                "/v1/conversations",
                headers={
                    "Authorization": f"Bearer {unlimited.json()['key']}",
                    "Origin": "https://shop.example",
                    "X-Anonymous-ID": f"rotating-visitor-{number:05d}",
                },
            )
            statuses.append(response.status_code)
            if response.status_code == 429:
                assert int(response.headers["retry-after"]) >= 1
                assert response.json()["error"]["code"] == "rate_limited"
                break
    assert statuses[-1] == 429, f"{len(statuses)} anonymous requests from one address, none limited"
    assert set(statuses[:-1]) == {200}
    # A signed-in customer (identity token) of the same site is not held by the anonymous limit.
    from switchboard_gateway.auth.identity import sign_identity

    token = sign_identity(keys["identity_secret"], "signed-in-customer")
    signed = httpx.get(
        f"{fleet.gateway}/v1/conversations",
        headers={
            "Authorization": f"Bearer {unlimited.json()['key']}",
            "Origin": "https://shop.example",
            "X-End-User-Token": token,
        },
        timeout=10,
    )
    assert signed.status_code == 200, signed.text


def test_metrics_are_not_public_on_the_gateway(fleet: ReliabilityFleet) -> None:
    for base in (fleet.gateway, fleet.gateway_b):
        for headers in ({}, {"Authorization": f"Bearer {fleet.demo['server_key']}"}):
            response = httpx.get(f"{base}/metrics", headers=headers, timeout=10)
            assert response.status_code in (401, 403, 404), (base, headers, response.status_code)
            assert "python_gc" not in response.text and "http_request" not in response.text
        scraped = httpx.get(f"{base}/metrics", headers=OPERATOR, timeout=10)
        assert scraped.status_code == 200 and "python_gc" in scraped.text


def test_the_widget_makes_anonymous_ids_from_a_cryptographic_source(fleet: ReliabilityFleet) -> None:
    script = httpx.get(f"{fleet.gateway}/widget.js", timeout=10)
    assert script.status_code == 200
    assert "Math.random" not in script.text
    assert "getRandomValues" in script.text
