"""End to end through the gateway process: key scopes, widget origins, limits, failures, propagation."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from switchboard_cli.demo import bootstrap_demo
from switchboard_cli.main import app as cli_app
from switchboard_gateway.auth.identity import sign_identity
from switchboard_shared.testing.processes import ServiceProcess, start_all
from switchboard_shared.testing.servers import free_port

from .conftest import OPERATOR_TOKEN, Fleet, fleet_env

pytestmark = pytest.mark.e2e
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_demo_bootstrap_is_idempotent(fleet: Fleet) -> None:
    again = bootstrap_demo(fleet.gateway, OPERATOR_TOKEN)
    assert again["identity_secret"] == fleet.demo["identity_secret"]
    keys = httpx.get(f"{fleet.gateway}/v1/admin/tenants/demo/keys", headers=OPERATOR).json()
    assert sorted(k["scope"] for k in keys) == ["admin", "server", "widget"]
    widget = next(k for k in keys if k["scope"] == "widget")
    assert fleet.gateway in widget["allowed_origins"] and "http://localhost:*" in widget["allowed_origins"]
    # The earlier keys were replaced; the newest ones work.
    fleet.demo.update(again)
    assert httpx.get(f"{fleet.gateway}/v1/models", headers=bearer(again["server_key"])).status_code == 200
    assert httpx.get(f"{fleet.gateway}/v1/models", headers=bearer("sk_" + "Z" * 40)).status_code == 401


def test_demo_keys_survive_a_restart_of_up(fleet: Fleet, tmp_path: Path) -> None:
    """`switchboard up` keeps its demo keys in the data dir and reuses them while they are still valid."""
    keys_file = tmp_path / "demo-keys.json"
    first = bootstrap_demo(fleet.gateway, OPERATOR_TOKEN, keys_file=keys_file)
    fleet.demo.update(first)
    assert keys_file.stat().st_mode & 0o777 == 0o600
    again = bootstrap_demo(fleet.gateway, OPERATOR_TOKEN, keys_file=keys_file)
    assert {k: again[k] for k in ("widget_key", "server_key", "admin_key")} == {
        k: first[k] for k in ("widget_key", "server_key", "admin_key")
    }
    assert httpx.get(f"{fleet.gateway}/v1/models", headers=bearer(again["server_key"])).status_code == 200
    # A revoked demo key is not reused: all three are issued afresh.
    listed = httpx.get(f"{fleet.gateway}/v1/admin/tenants/demo/keys", headers=OPERATOR).json()
    server = next(k for k in listed if k["name"] == "demo-server" and not k["revoked_at"])
    revoked = httpx.delete(f"{fleet.gateway}/v1/admin/tenants/demo/keys/{server['id']}", headers=OPERATOR)
    assert revoked.status_code in (200, 204), revoked.text
    fresh = bootstrap_demo(fleet.gateway, OPERATOR_TOKEN, keys_file=keys_file)
    fleet.demo.update(fresh)
    assert fresh["server_key"] != first["server_key"] and fresh["widget_key"] != first["widget_key"]
    assert httpx.get(f"{fleet.gateway}/v1/models", headers=bearer(fresh["server_key"])).status_code == 200
    assert httpx.get(f"{fleet.gateway}/v1/models", headers=bearer(first["server_key"])).status_code == 401


def test_key_scopes(fleet: Fleet) -> None:
    gateway, demo = fleet.gateway, fleet.demo
    widget = {**bearer(demo["widget_key"]), "Origin": gateway, "X-Anonymous-ID": "e2e-visitor-1"}
    assert httpx.get(f"{gateway}/v1/kbs", headers=widget).status_code == 403
    assert (
        httpx.get(f"{gateway}/v1/admin/tenants/demo", headers=bearer(demo["server_key"])).status_code == 403
    )
    assert httpx.get(f"{gateway}/v1/admin/tenants/demo", headers=bearer(demo["admin_key"])).status_code == 200
    assert httpx.get(f"{gateway}/v1/admin/tenants", headers=bearer(demo["admin_key"])).status_code == 403
    assert httpx.get(f"{gateway}/v1/conversations", headers=OPERATOR).status_code == 403


def test_disallowed_origin_refused(fleet: Fleet) -> None:
    headers = {
        **bearer(fleet.demo["widget_key"]),
        "Origin": "https://evil.example",
        "X-Anonymous-ID": "e2e-visitor-2",
    }
    response = httpx.post(f"{fleet.gateway}/v1/conversations", json={"end_user_id": "x"}, headers=headers)
    assert response.status_code == 403
    assert "access-control-allow-origin" not in response.headers
    assert response.json()["error"]["request_id"] == response.headers["x-request-id"]


def test_server_key_works(fleet: Fleet) -> None:
    fleet.require("chat")
    headers = bearer(fleet.demo["server_key"])
    created = httpx.post(
        f"{fleet.gateway}/v1/conversations",
        json={"end_user_id": "e2e-user", "channel": "api"},
        headers=headers,
    )
    assert created.status_code in (200, 201), created.text
    conversation = created.json()
    assert conversation["tenant_id"] == "demo"
    read = httpx.get(f"{fleet.gateway}/v1/conversations/{conversation['id']}", headers=headers)
    assert read.status_code == 200 and read.json()["id"] == conversation["id"]


def test_widget_from_allowed_origin_reaches_chat(fleet: Fleet) -> None:
    fleet.require("chat")
    headers = {
        **bearer(fleet.demo["widget_key"]),
        "Origin": "http://localhost:3000",
        "X-Anonymous-ID": "e2e-visitor-3",
    }
    created = httpx.post(
        f"{fleet.gateway}/v1/conversations",
        json={"end_user_id": "anon:e2e-visitor-3", "channel": "web"},
        headers=headers,
    )
    assert created.status_code in (200, 201), created.text
    assert created.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert created.json()["end_user_id"] == "anon:e2e-visitor-3"


def test_rate_limit_429_with_retry_after(fleet: Fleet) -> None:
    created = httpx.post(
        f"{fleet.gateway}/v1/admin/tenants/demo/keys",
        json={"scope": "server", "name": "e2e-limited", "requests_per_minute": 2},
        headers=OPERATOR,
    )
    key = created.json()["key"]
    statuses = [httpx.get(f"{fleet.gateway}/v1/models", headers=bearer(key)) for _ in range(3)]
    assert [r.status_code for r in statuses[:2]] == [200, 200]
    limited = statuses[2]
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.json()["error"]["code"] == "rate_limited"


def test_request_id_and_traceparent_reach_upstream_logs(fleet: Fleet) -> None:
    upstream = next(
        (name for name in ("analytics", "chat", "retrieval", "integrations") if name in fleet.processes), None
    )
    if upstream is None:
        fleet.require("analytics")
    path = {
        "analytics": "/v1/analytics/summary",
        "chat": "/v1/conversations",
        "retrieval": "/v1/kbs",
        "integrations": "/v1/tickets",
    }[upstream]  # type: ignore[index]
    request_id = f"e2e-{int(time.time() * 1000)}"
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    httpx.get(
        f"{fleet.gateway}{path}",
        headers={
            **bearer(fleet.demo["server_key"]),
            "X-Request-ID": request_id,
            "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01",
        },
    )
    deadline = time.monotonic() + 5
    lines: list[dict[str, object]] = []
    while time.monotonic() < deadline and not lines:
        lines = [
            json.loads(line)
            for line in fleet.logs(upstream).splitlines()  # type: ignore[arg-type]
            if request_id in line and line.startswith("{")
        ]
        time.sleep(0.1)
    assert lines, f"{upstream} logged nothing with request id {request_id}"
    traceparent = str(lines[0]["traceparent"])
    assert traceparent.split("-")[1] == trace_id
    assert traceparent.split("-")[2] != "00f067aa0ba902b7"  # the gateway's hop is a new span
    gateway_lines = [line for line in fleet.logs("gateway").splitlines() if request_id in line]
    assert gateway_lines


def test_upstream_killed_gives_503_with_request_id(tmp_path: Path) -> None:
    """A gateway and one upstream of its own, so killing the upstream does not disturb the shared fleet."""
    data_dir = Path(tempfile.mkdtemp(prefix="sb-e2e-kill-"))
    ports = {"gateway": free_port(), "analytics": free_port()}
    env = fleet_env(data_dir, ports, GATEWAY_BREAKER_FAIL_MAX="50")
    gateway = ServiceProcess.of("gateway", env, port=ports["gateway"], name="gateway-kill")
    analytics = ServiceProcess.of("analytics", env, port=ports["analytics"], name="analytics-kill")
    try:
        failures = start_all({"gateway": gateway, "analytics": analytics})
        if "gateway" in failures:
            pytest.fail(failures["gateway"][-2000:])
        keys = bootstrap_demo(gateway.url, OPERATOR_TOKEN)
        headers = bearer(keys["server_key"])
        if "analytics" not in failures:
            alive = httpx.get(f"{gateway.url}/v1/analytics/summary", headers=headers)
            assert alive.status_code < 500, alive.text
            analytics.stop(kill=True)
        down = httpx.get(
            f"{gateway.url}/v1/analytics/summary", headers={**headers, "X-Request-ID": "e2e-dead-upstream"}
        )
        assert down.status_code == 503
        error = down.json()["error"]
        assert error["code"] == "upstream_unavailable"
        assert error["request_id"] == "e2e-dead-upstream" == down.headers["x-request-id"]
        assert down.headers["retry-after"]
    finally:
        gateway.stop()
        analytics.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def test_cli_keys_create_list_revoke(fleet: Fleet) -> None:
    runner = CliRunner(env={"COLUMNS": "250"})
    common = ["--tenant", "demo", "--gateway", fleet.gateway, "--token", OPERATOR_TOKEN]
    created = runner.invoke(
        cli_app,
        ["keys", "create", "--scope", "widget", "--origin", "https://cli.example", "--name", "cli", *common],
    )
    assert created.exit_code == 0, created.output
    key = created.output.strip().splitlines()[-1]
    assert re.fullmatch(r"pk_[A-Za-z0-9]{40}", key)
    listed = runner.invoke(cli_app, ["keys", "list", *common])
    assert listed.exit_code == 0 and key[:10] in listed.output
    key_id = next(
        k["id"]
        for k in httpx.get(f"{fleet.gateway}/v1/admin/tenants/demo/keys", headers=OPERATOR).json()
        if k["name"] == "cli"
    )
    revoked = runner.invoke(cli_app, ["keys", "revoke", key_id, *common])
    assert revoked.exit_code == 0, revoked.output
    refused = httpx.get(
        f"{fleet.gateway}/v1/conversations",
        headers={**bearer(key), "Origin": "https://cli.example", "X-Anonymous-ID": "cli-visitor"},
    )
    assert refused.status_code == 401
    bad = runner.invoke(
        cli_app, ["keys", "list", "--tenant", "demo", "--gateway", fleet.gateway, "--token", "wrong"]
    )
    assert bad.exit_code == 1 and "401" in bad.output


def test_openai_client_streams_through_gateway(fleet: Fleet) -> None:
    fleet.require("chat")
    import openai

    client = openai.OpenAI(base_url=f"{fleet.gateway}/v1", api_key=fleet.demo["server_key"], max_retries=0)
    stream = client.chat.completions.create(
        model="switchboard-assistant",
        messages=[{"role": "user", "content": "How do I reset my password?"}],
        stream=True,
        user="e2e-openai",
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    final = next(c for c in chunks if c.choices and c.choices[0].finish_reason == "stop")
    assert final.model_extra and final.model_extra["switchboard"]["conversation_id"]
    completion = client.chat.completions.create(
        model="switchboard-assistant", messages=[{"role": "user", "content": "Thanks!"}], user="e2e-openai"
    )
    assert (
        completion.model_extra
        and completion.model_extra["switchboard"]["conversation_id"]
        == final.model_extra["switchboard"]["conversation_id"]
    )


def test_aggregated_openapi_from_live_services(fleet: Fleet) -> None:
    doc = httpx.get(f"{fleet.gateway}/openapi.json").json()
    assert "/v1/admin/tenants" in doc["paths"]
    live = [name for name in ("chat", "retrieval", "integrations", "analytics") if name in fleet.processes]
    assert set(doc["info"]["x-switchboard-missing-services"]).isdisjoint(live)
    assert not any(path.startswith("/internal/") for path in doc["paths"])


def test_signed_identity_unlocks_order_lookup(fleet: Fleet) -> None:
    """A widget user whose identity the tenant signed gets their order's status; an anonymous one does not."""
    fleet.require("chat", "integrations", "crm")
    gateway = fleet.gateway
    widget = {**bearer(fleet.demo["widget_key"]), "Origin": gateway}
    question = {"text": "Where is my order B-2001?"}

    token = sign_identity(fleet.demo["identity_secret"], "C-2001", ttl_seconds=600)
    verified = {**widget, "X-End-User-Token": token}
    conversation = httpx.post(
        f"{gateway}/v1/conversations", json={"end_user_id": "C-2001", "channel": "web"}, headers=verified
    )
    assert conversation.status_code in (200, 201), conversation.text
    turn = httpx.post(
        f"{gateway}/v1/conversations/{conversation.json()['id']}/messages",
        json=question,
        headers=verified,
        timeout=60,
    )
    assert turn.status_code == 200, turn.text
    reply = turn.json()["reply"]["text"]
    assert "shipped" in reply and "1Z999AA10123456784" in reply, (
        f"{reply}\n--- integrations log:\n{fleet.logs('integrations')[-2500:]}\n--- chat log:\n{fleet.logs('chat')[-2500:]}"
    )

    anonymous = {**widget, "X-Anonymous-ID": "e2e-anon-orders"}
    conversation = httpx.post(
        f"{gateway}/v1/conversations",
        json={"end_user_id": "anon:e2e-anon-orders", "channel": "web"},
        headers=anonymous,
    )
    assert conversation.status_code in (200, 201), conversation.text
    turn = httpx.post(
        f"{gateway}/v1/conversations/{conversation.json()['id']}/messages",
        json=question,
        headers=anonymous,
        timeout=60,
    )
    assert turn.status_code == 200, turn.text
    assert "1Z999AA10123456784" not in turn.json()["reply"]["text"]
