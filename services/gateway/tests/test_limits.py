"""Rate limits per key and per end user, daily budgets and the kill switch: 429 + Retry-After."""

from __future__ import annotations

from pathlib import Path

import pytest

from switchboard_gateway.auth.identity import sign_identity

from .conftest import OPERATOR, Env, FakeUpstream, create_key, gateway_env


@pytest.mark.asyncio
async def test_key_rate_limit(env: Env) -> None:
    key = await create_key(env.client, "acme", "server", requests_per_minute=2)
    headers = {"Authorization": f"Bearer {key}"}
    assert (await env.client.get("/v1/kbs", headers=headers)).status_code == 200
    assert (await env.client.get("/v1/kbs", headers=headers)).status_code == 200
    limited = await env.client.get("/v1/kbs", headers=headers)
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert limited.json()["error"]["request_id"] == limited.headers["x-request-id"]
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    # Another key of the same tenant has its own allowance.
    assert (await env.client.get("/v1/kbs", headers=env.server())).status_code == 200


@pytest.mark.asyncio
async def test_end_user_rate_limit_and_cors_on_429(env: Env) -> None:
    await env.client.patch(
        "/v1/admin/tenants/acme", json={"end_user_requests_per_minute": 1}, headers=OPERATOR
    )
    assert (
        await env.client.get("/v1/conversations", headers=env.widget(anonymous="visitor-aaaa"))
    ).status_code == 200
    limited = await env.client.get("/v1/conversations", headers=env.widget(anonymous="visitor-aaaa"))
    assert limited.status_code == 429
    assert "end user" in limited.json()["error"]["message"]
    assert limited.headers["access-control-allow-origin"] == "https://shop.example"  # the widget can read it
    other_user = await env.client.get("/v1/conversations", headers=env.widget(anonymous="visitor-bbbb"))
    assert other_user.status_code == 200


@pytest.mark.asyncio
async def test_zero_disables_limits(upstream: FakeUpstream, tmp_path: Path) -> None:
    """0 means "no limit", not "the default": with small defaults, keys and tenants set to 0 get no 429."""
    small = {"server_key_requests_per_minute": 3, "end_user_requests_per_minute": 3}
    async with gateway_env(f"sqlite+aiosqlite:///{tmp_path}/gw.db", upstream, tmp_path, **small) as env:
        defaults = {"Authorization": f"Bearer {env.server_key}", "X-End-User-ID": "busy-user"}
        statuses = [(await env.client.get("/v1/kbs", headers=defaults)).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        await env.client.patch(
            "/v1/admin/tenants/acme", json={"end_user_requests_per_minute": 0}, headers=OPERATOR
        )
        key = await create_key(env.client, "acme", "server", requests_per_minute=0)
        unlimited = {"Authorization": f"Bearer {key}", "X-End-User-ID": "busy-user"}
        statuses = [(await env.client.get("/v1/kbs", headers=unlimited)).status_code for _ in range(10)]
        assert statuses == [200] * 10


@pytest.mark.asyncio
async def test_daily_message_budget(env: Env) -> None:
    await env.client.patch("/v1/admin/tenants/acme", json={"daily_message_budget": 1}, headers=OPERATOR)
    cid = (
        await env.client.post("/v1/conversations", json={"end_user_id": "u"}, headers=env.server())
    ).json()["id"]
    first = await env.client.post(
        f"/v1/conversations/{cid}/messages", json={"text": "hi"}, headers=env.server()
    )
    assert first.status_code == 200
    second = await env.client.post(
        f"/v1/conversations/{cid}/messages", json={"text": "hi"}, headers=env.server()
    )
    assert second.status_code == 429
    assert second.json()["error"]["code"] == "budget_exhausted"
    assert 1 <= int(second.headers["retry-after"]) <= 86_400
    # Reading is not a message: still allowed.
    assert (await env.client.get(f"/v1/conversations/{cid}", headers=env.server())).status_code == 200
    usage = (await env.client.get("/v1/admin/tenants/acme/usage", headers=OPERATOR)).json()
    assert usage["message_budget"] == 1 and usage["messages"] == 2


@pytest.mark.asyncio
async def test_token_budget(env: Env) -> None:
    await env.client.patch("/v1/admin/tenants/acme", json={"daily_token_budget": 5}, headers=OPERATOR)
    cid = (
        await env.client.post("/v1/conversations", json={"end_user_id": "u"}, headers=env.server())
    ).json()["id"]
    assert (
        await env.client.post(f"/v1/conversations/{cid}/messages", json={"text": "hi"}, headers=env.server())
    ).status_code == 200
    spent = await env.client.post(
        f"/v1/conversations/{cid}/messages", json={"text": "hi"}, headers=env.server()
    )
    assert spent.status_code == 429
    assert "token budget" in spent.json()["error"]["message"]


@pytest.mark.asyncio
async def test_kill_switch(env: Env) -> None:
    admin = {"Authorization": f"Bearer {env.admin_key}"}
    killed = await env.client.patch("/v1/admin/tenants/acme", json={"disabled": True}, headers=admin)
    assert killed.status_code == 200 and killed.json()["disabled"] is True
    refused = await env.client.get("/v1/kbs", headers=env.server())
    assert refused.status_code == 403
    assert "kill switch" in refused.json()["error"]["message"]
    await env.client.patch("/v1/admin/tenants/acme", json={"disabled": False}, headers=OPERATOR)
    assert (await env.client.get("/v1/kbs", headers=env.server())).status_code == 200


@pytest.mark.redis
@pytest.mark.asyncio
async def test_limits_on_redis(
    redis_url: str, sqlite_url: str, upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with gateway_env(sqlite_url, upstream, tmp_path, redis_url=redis_url) as env:
        key = await create_key(env.client, "acme", "server", requests_per_minute=1)
        headers = {"Authorization": f"Bearer {key}"}
        assert (await env.client.get("/v1/kbs", headers=headers)).status_code == 200
        limited = await env.client.get("/v1/kbs", headers=headers)
        assert limited.status_code == 429 and limited.headers["retry-after"]
        await env.client.patch("/v1/admin/tenants/acme", json={"daily_message_budget": 0}, headers=OPERATOR)
        cid = (
            await env.client.post("/v1/conversations", json={"end_user_id": "u"}, headers=env.server())
        ).json()["id"]
        spent = await env.client.post(
            f"/v1/conversations/{cid}/messages", json={"text": "hi"}, headers=env.server()
        )
        assert spent.status_code == 429 and spent.json()["error"]["code"] == "budget_exhausted"


@pytest.mark.asyncio
async def test_anonymous_visitors_share_a_limit_per_address(upstream: FakeUpstream, tmp_path: Path) -> None:
    """A new X-Anonymous-ID per request does not escape the limits: one address, one allowance."""
    small = {"anonymous_requests_per_minute_per_address": 3}
    async with gateway_env(f"sqlite+aiosqlite:///{tmp_path}/gw.db", upstream, tmp_path, **small) as env:
        statuses = [
            (
                await env.client.get("/v1/conversations", headers=env.widget(anonymous=f"rotating-{n:04d}"))
            ).status_code
            for n in range(4)
        ]
        assert statuses == [200, 200, 200, 429]
        signed = sign_identity(env.identity_secret, "signed-in-customer")
        verified = {**env.widget(anonymous=None), "X-End-User-Token": signed}
        assert (await env.client.get("/v1/conversations", headers=verified)).status_code == 200
