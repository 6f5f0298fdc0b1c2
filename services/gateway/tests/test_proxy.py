"""The proxy path: routing to owners, identity headers, widget rules, CORS, webhooks, upstream failures."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
import pytest

from switchboard_gateway.auth.identity import sign_identity
from switchboard_shared.tokens import estimate_tokens

from .conftest import OPERATOR, SHOP_ORIGIN, Env, FakeUpstream, gateway_env
from .upstream_server import REPLY_TOKENS


@pytest.mark.asyncio
async def test_server_key_forwards_with_internal_contract(env: Env) -> None:
    trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    response = await env.client.post(
        "/v1/kbs/kb1/search?limit=3",
        json={"query": "refunds"},
        headers={
            **env.server(),
            "X-Request-ID": "req-123",
            "traceparent": trace,
            "X-Tenant-ID": "someone-else",
            "X-Internal-Token": "forged",
            "X-End-User-Verified": "1",
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["path"] == "/internal/v1/kbs/kb1/search" and body["query"] == "limit=3"
    assert orjson.loads(body["body"]) == {"query": "refunds"}
    sent = env.upstream.last("/internal/v1/kbs").headers
    assert sent["X-Internal-Token"] == "internal-test-token"
    assert sent["X-Tenant-ID"] == "acme" and sent["X-Key-Scope"] == "server"
    assert "X-End-User-Verified" not in sent and "X-End-User-ID" not in sent
    assert "Authorization" not in sent
    assert sent["X-Request-ID"] == "req-123"
    assert sent["traceparent"].split("-")[1] == "0af7651916cd43dd8448eb211c80319c"
    assert sent["traceparent"] != trace
    assert sent["X-Forwarded-For"] == "203.0.113.9"
    assert response.headers["x-request-id"] == "req-123"
    assert response.headers["x-upstream"] == "yes"
    assert "set-cookie" not in response.headers
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.asyncio
async def test_server_key_may_assert_end_user(env: Env) -> None:
    response = await env.client.get(
        "/v1/conversations", headers={**env.server(), "X-End-User-ID": "cust_9", "X-End-User-Verified": "1"}
    )
    assert response.status_code == 200
    sent = env.upstream.last("/internal/v1/conversations").headers
    assert sent["X-End-User-ID"] == "cust_9" and sent["X-End-User-Verified"] == "1"


@pytest.mark.asyncio
async def test_upstream_status_and_errors_pass_through(env: Env) -> None:
    response = await env.client.get("/v1/tickets/t1?status=404", headers=env.server())
    assert response.status_code == 404
    assert response.json()["path"] == "/internal/v1/tickets/t1"


@pytest.mark.asyncio
async def test_missing_and_unknown_keys(env: Env) -> None:
    missing = await env.client.get("/v1/conversations")
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "unauthorized"
    assert missing.headers["www-authenticate"] == "Bearer"
    unknown = await env.client.get("/v1/conversations", headers={"Authorization": "Bearer sk_" + "a" * 40})
    assert unknown.status_code == 401
    operator = await env.client.get("/v1/conversations", headers=OPERATOR)
    assert operator.status_code == 403
    assert env.upstream.received == []


@pytest.mark.asyncio
async def test_widget_from_allowed_origin(env: Env) -> None:
    response = await env.client.post("/v1/conversations", json={"end_user_id": "x"}, headers=env.widget())
    assert response.status_code == 201
    assert response.headers["access-control-allow-origin"] == SHOP_ORIGIN
    assert "x-request-id" in response.headers["access-control-expose-headers"]
    sent = env.upstream.last("/internal/v1/conversations").headers
    assert sent["X-End-User-ID"] == "anon:anon-visitor-1"
    assert "X-End-User-Verified" not in sent
    assert sent["X-Key-Scope"] == "widget"
    local = await env.client.get("/v1/conversations", headers=env.widget(origin="http://localhost:5173"))
    assert local.status_code == 200
    # The assistant's public greeting (shown before the first message), not its settings.
    greeting = await env.client.get("/v1/assistant/greeting", headers=env.widget())
    assert greeting.status_code == 200, greeting.text
    assert env.upstream.last("/internal/v1/assistant/greeting").headers["X-Tenant-ID"] == env.tenant_id
    settings = await env.client.get("/v1/assistant", headers=env.widget())
    assert settings.status_code == 403


@pytest.mark.asyncio
async def test_widget_refusals(env: Env) -> None:
    client = env.client
    evil = await client.get("/v1/conversations", headers=env.widget(origin="https://evil.example"))
    assert evil.status_code == 403
    assert "access-control-allow-origin" not in evil.headers
    assert "not allowed" in evil.json()["error"]["message"]
    no_origin = await client.get(
        "/v1/conversations", headers={"X-API-Key": env.widget_key, "X-Anonymous-ID": "abcdefgh"}
    )
    assert no_origin.status_code == 403
    other_area = await client.get("/v1/kbs", headers=env.widget())
    assert other_area.status_code == 403
    operator_action = await client.put("/v1/conversations/c1/owner", json={}, headers=env.widget())
    assert operator_action.status_code == 403
    completions = await client.post("/v1/chat/completions", json={}, headers=env.widget())
    assert completions.status_code == 403
    no_identity = await client.get("/v1/conversations", headers=env.widget(anonymous=None))
    assert no_identity.status_code == 400
    bad_anonymous = await client.get("/v1/conversations", headers=env.widget(anonymous="../../x"))
    assert bad_anonymous.status_code == 400
    assert bad_anonymous.headers["access-control-allow-origin"] == SHOP_ORIGIN
    assert env.upstream.received == []


@pytest.mark.asyncio
async def test_widget_signed_identity(env: Env) -> None:
    token = sign_identity(env.identity_secret, "cust_42", ttl_seconds=600)
    response = await env.client.get("/v1/conversations", headers={**env.widget(), "X-End-User-Token": token})
    assert response.status_code == 200
    sent = env.upstream.last("/internal/v1/conversations").headers
    assert sent["X-End-User-ID"] == "cust_42" and sent["X-End-User-Verified"] == "1"

    expired = sign_identity(env.identity_secret, "cust_42", ttl_seconds=60, now=time.time() - 3600)
    refused = await env.client.get("/v1/conversations", headers={**env.widget(), "X-End-User-Token": expired})
    assert refused.status_code == 401
    assert "expired" in refused.json()["error"]["message"]
    forged = sign_identity("not-the-secret", "cust_42")
    refused = await env.client.get("/v1/conversations", headers={**env.widget(), "X-End-User-Token": forged})
    assert refused.status_code == 401


@pytest.mark.asyncio
async def test_preflight_is_answered(env: Env) -> None:
    response = await env.client.options(
        "/v1/conversations",
        headers={
            "Origin": SHOP_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-api-key",
        },
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == SHOP_ORIGIN
    assert "x-anonymous-id" in response.headers["access-control-allow-headers"]


@pytest.mark.asyncio
async def test_webhooks_need_no_key_and_carry_no_identity(env: Env) -> None:
    response = await env.client.post(
        "/v1/channels/telegram/bot1",
        json={"update_id": 1},
        headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret", "X-Tenant-ID": "acme", "X-End-User-ID": "u"},
    )
    assert response.status_code == 200
    sent = env.upstream.last("/internal/v1/channels").headers
    assert sent["X-Telegram-Bot-Api-Secret-Token"] == "s3cret"
    assert sent["X-Internal-Token"] == "internal-test-token"
    assert "X-Tenant-ID" not in sent and "X-End-User-ID" not in sent


@pytest.mark.asyncio
async def test_dot_segments_refused(env: Env) -> None:
    response = await env.client.get("/v1/conversations/%2E%2E/tickets", headers=env.server())
    assert response.status_code == 400
    assert env.upstream.received == []


@pytest.mark.asyncio
async def test_body_limit(env: Env) -> None:
    response = await env.client.post(
        "/v1/conversations/c1/messages",
        content=b"x" * 70_000,
        headers={**env.server(), "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


@pytest.mark.asyncio
async def test_sse_passes_through(env: Env) -> None:
    created = await env.client.post("/v1/conversations", json={"end_user_id": "u1"}, headers=env.server())
    cid = created.json()["id"]
    async with env.client.stream(
        "POST",
        f"/v1/conversations/{cid}/messages",
        json={"text": "How do refunds work?"},
        headers={**env.server(), "Accept": "text/event-stream"},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        body = b"".join([chunk async for chunk in response.aiter_bytes()])
    assert body.count(b"event: token") == 5
    assert b"event: done" in body
    # One Cache-Control, the public API's (never stored), in place of the service's no-cache.
    assert response.headers.get_list("cache-control") == ["no-store"]
    assert response.headers["x-content-type-options"] == "nosniff"
    usage = (await env.client.get("/v1/admin/tenants/acme/usage", headers=OPERATOR)).json()
    assert usage["messages"] == 1
    reply = "".join(REPLY_TOKENS)
    assert usage["tokens"] == estimate_tokens("How do refunds work?") + estimate_tokens(reply) == 5 + 10


@pytest.mark.asyncio
@pytest.mark.parametrize("accept", ["application/json", "text/event-stream"])
async def test_a_turn_spends_the_usage_chat_reports(env: Env, accept: str) -> None:
    """The token budget is spent by chat's usage of the turn (here it counts the earlier turns sent with
    the message), read from the JSON result or the stream's done packet, not estimated again."""
    created = await env.client.post("/v1/conversations", json={"end_user_id": "u1"}, headers=env.server())
    history = [{"role": "user", "text": "x" * 400}, {"role": "assistant", "text": "y" * 400}]
    response = await env.client.post(
        f"/v1/conversations/{created.json()['id']}/messages",
        json={"text": "How do refunds work?", "history": history},
        headers={**env.server(), "Accept": accept},
    )
    assert response.status_code == 200
    usage = (await env.client.get("/v1/admin/tenants/acme/usage", headers=OPERATOR)).json()
    assert usage["tokens"] == 5 + 100 + 100 + 10  # the message, the two earlier turns, the answer


@pytest.mark.asyncio
async def test_upstream_down_gives_503_then_breaker_opens(tmp_path: Path, sqlite_url: str) -> None:
    dead = FakeUpstream()  # never started: nothing listens on its port
    async with gateway_env(sqlite_url, dead, tmp_path, breaker_fail_max=2, breaker_reset_seconds=30) as env:
        first = await env.client.get("/v1/kbs", headers={**env.server(), "X-Request-ID": "rid-503"})
        assert first.status_code == 503
        error = first.json()["error"]
        assert error["code"] == "upstream_unavailable" and error["request_id"] == "rid-503"
        assert first.headers["retry-after"]
        await env.client.get("/v1/kbs", headers=env.server())
        opened = await env.client.get("/v1/kbs", headers=env.server())
        assert opened.status_code == 503
        assert "circuit open" in opened.json()["error"]["message"]
        assert opened.headers["retry-after"] == "30"
        ready = (await env.client.get("/readyz")).json()
        assert ready["breakers"]["proxy:retrieval"] == "open"


@pytest.mark.asyncio
async def test_readiness_reports_an_expired_open_breaker_as_half_open(
    tmp_path: Path, sqlite_url: str
) -> None:
    dead = FakeUpstream()  # never started: nothing listens on its port
    async with gateway_env(sqlite_url, dead, tmp_path, breaker_fail_max=1, breaker_reset_seconds=0.2) as env:
        assert (await env.client.get("/v1/kbs", headers=env.server())).status_code == 503
        assert (await env.client.get("/readyz")).json()["breakers"]["proxy:retrieval"] == "open"
        await asyncio.sleep(0.3)
        ready = await env.client.get("/readyz")
        assert ready.json()["breakers"]["proxy:retrieval"] == "half-open"  # the next call is the trial


@pytest.mark.asyncio
async def test_upstream_timeout_gives_504(tmp_path: Path, sqlite_url: str, upstream: FakeUpstream) -> None:
    async with gateway_env(sqlite_url, upstream, tmp_path, upstream_timeout_seconds=0.2) as env:
        response = await env.client.get("/v1/kbs?sleep=1", headers=env.server())
        assert response.status_code == 504
        assert response.json()["error"]["code"] == "upstream_timeout"


@pytest.mark.asyncio
async def test_aggregated_openapi(env: Env) -> None:
    doc = (await env.client.get("/openapi.json")).json()
    assert "/v1/conversations" in doc["paths"] and "/v1/kbs" in doc["paths"]
    assert "/v1/admin/tenants" in doc["paths"] and "/v1/chat/completions" in doc["paths"]
    assert not any(path.startswith("/internal") or path == "/v1/healthz" for path in doc["paths"])
    create = doc["paths"]["/v1/conversations"]["post"]
    assert [p["name"] for p in create["parameters"]] == ["limit"]
    assert create["security"]
    assert "CreateConversation" in doc["components"]["schemas"]
    # The fake's conflicting ErrorResponse was renamed, the gateway's own kept.
    assert any(name.endswith("__ErrorResponse") for name in doc["components"]["schemas"])
    assert doc["info"]["x-switchboard-missing-services"] == []
    docs = await env.client.get("/docs")
    assert docs.status_code == 200 and "/openapi.json" in docs.text


@pytest.mark.asyncio
async def test_static_assets(tmp_path: Path, sqlite_url: str, upstream: FakeUpstream) -> None:
    static = tmp_path / "static"
    static.mkdir()
    (static / "index.html").write_text("<html>demo</html>")
    (static / "widget.js").write_text("console.log('widget')")
    async with gateway_env(sqlite_url, upstream, tmp_path) as env:
        index = await env.client.get("/")
        assert index.status_code == 200 and "demo" in index.text
        widget = await env.client.get("/widget.js")
        assert widget.status_code == 200
        assert widget.headers["cross-origin-resource-policy"] == "cross-origin"
        missing = await env.client.get("/nope.js")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"
        assert (await env.client.get("/healthz")).status_code == 200
