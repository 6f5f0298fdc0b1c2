"""The admin API: tenants, keys (hashed, shown once, scoped, revocable), identity secrets, usage."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from switchboard_gateway.keys.models import ApiKeyRow
from switchboard_gateway.keys.secrets import hash_key

from .conftest import OPERATOR, Env, FakeUpstream, create_key, create_tenant, gateway_env


@pytest.mark.asyncio
async def test_tenant_and_keys_on_both_backends(
    database_url: str, upstream: FakeUpstream, tmp_path: Path
) -> None:
    async with gateway_env(database_url, upstream, tmp_path) as env:
        client = env.client
        listed = await client.get("/v1/admin/tenants", headers=OPERATOR)
        assert listed.status_code == 200
        assert [t["id"] for t in listed.json()["items"]] == ["acme"]

        keys = (await client.get("/v1/admin/tenants/acme/keys", headers=OPERATOR)).json()
        assert sorted(k["scope"] for k in keys) == ["admin", "server", "widget"]
        prefixes = {k["scope"]: k["prefix"] for k in keys}
        assert prefixes["widget"].startswith("pk_") and prefixes["server"].startswith("sk_")
        assert prefixes["admin"].startswith("ak_")
        assert all("key" not in k for k in keys)

        # Stored hashed: the plaintext appears nowhere in the table.
        engine = create_async_engine(database_url)
        async with engine.connect() as conn:
            rows = (await conn.execute(select(ApiKeyRow.key_hash, ApiKeyRow.display_prefix))).all()
        await engine.dispose()
        hashes = {row[0] for row in rows}
        assert hash_key(env.server_key) in hashes
        assert env.server_key not in hashes

        duplicate = await client.post("/v1/admin/tenants", json={"id": "acme", "name": "x"}, headers=OPERATOR)
        assert duplicate.status_code == 409
        assert duplicate.json()["error"]["code"] == "conflict"


@pytest.mark.asyncio
async def test_operator_token_required_and_admin_key_is_tenant_bound(env: Env) -> None:
    client = env.client
    assert (await client.get("/v1/admin/tenants")).status_code == 401
    bad = await client.get("/v1/admin/tenants", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    assert bad.json()["error"]["request_id"]

    admin = {"Authorization": f"Bearer {env.admin_key}"}
    # An admin key manages its own tenant…
    assert (await client.get("/v1/admin/tenants/acme", headers=admin)).status_code == 200
    new_key = await client.post(
        "/v1/admin/tenants/acme/keys", json={"scope": "server", "name": "ci"}, headers=admin
    )
    assert new_key.status_code == 201
    # …but cannot create tenants, list them, or see another tenant (which looks absent).
    assert (
        await client.post("/v1/admin/tenants", json={"id": "evil", "name": "x"}, headers=admin)
    ).status_code == 403
    assert (await client.get("/v1/admin/tenants", headers=admin)).status_code == 403
    await create_tenant(client, "other")
    assert (await client.get("/v1/admin/tenants/other", headers=admin)).status_code == 404
    assert (await client.get("/v1/admin/tenants/other/keys", headers=admin)).status_code == 404
    # Budgets are the operator's.
    patch = await client.patch("/v1/admin/tenants/acme", json={"daily_message_budget": 5}, headers=admin)
    assert patch.status_code == 403
    # Server and widget keys have no admin rights.
    server = {"Authorization": f"Bearer {env.server_key}"}
    assert (await client.get("/v1/admin/tenants/acme", headers=server)).status_code == 403


@pytest.mark.asyncio
async def test_revoked_key_stops_working_at_once(env: Env) -> None:
    client = env.client
    ok = await client.get("/v1/kbs", headers=env.server())
    assert ok.status_code == 200
    keys = (await client.get("/v1/admin/tenants/acme/keys", headers=OPERATOR)).json()
    server_id = next(k["id"] for k in keys if k["scope"] == "server")
    revoked = await client.delete(f"/v1/admin/tenants/acme/keys/{server_id}", headers=OPERATOR)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    refused = await client.get("/v1/kbs", headers=env.server())
    assert refused.status_code == 401
    with_revoked = (
        await client.get("/v1/admin/tenants/acme/keys?include_revoked=true", headers=OPERATOR)
    ).json()
    assert len(with_revoked) == 3


@pytest.mark.asyncio
async def test_an_expired_key_is_refused_even_from_the_cache(env: Env) -> None:
    expires = datetime.now(UTC) + timedelta(seconds=1)
    key = await create_key(env.client, "acme", "server", expires_at=expires.isoformat())
    headers = {"Authorization": f"Bearer {key}"}
    assert (await env.client.get("/v1/kbs", headers=headers)).status_code == 200  # now cached for 10 s
    await asyncio.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.05)
    assert (await env.client.get("/v1/kbs", headers=headers)).status_code == 401


@pytest.mark.asyncio
async def test_metrics_need_a_token_on_the_gateway(env: Env) -> None:
    assert (await env.client.get("/metrics")).status_code == 401
    assert (await env.client.get("/metrics", headers=env.server())).status_code == 401
    scraped = await env.client.get("/metrics", headers=OPERATOR)
    assert scraped.status_code == 200 and "python_gc" in scraped.text


@pytest.mark.asyncio
async def test_key_validation(env: Env) -> None:
    client = env.client
    no_origin = await client.post("/v1/admin/tenants/acme/keys", json={"scope": "widget"}, headers=OPERATOR)
    assert no_origin.status_code == 422
    bad_origin = await client.post(
        "/v1/admin/tenants/acme/keys",
        json={"scope": "widget", "allowed_origins": ["not a url"]},
        headers=OPERATOR,
    )
    assert bad_origin.status_code == 422
    assert bad_origin.json()["error"]["code"] == "validation_error"
    server_with_origin = await client.post(
        "/v1/admin/tenants/acme/keys",
        json={"scope": "server", "allowed_origins": ["https://a.example"]},
        headers=OPERATOR,
    )
    assert server_with_origin.status_code == 422
    missing_tenant = await client.post(
        "/v1/admin/tenants/nope/keys", json={"scope": "server"}, headers=OPERATOR
    )
    assert missing_tenant.status_code == 404
    bad_id = await client.post("/v1/admin/tenants", json={"id": "Bad Id!", "name": "x"}, headers=OPERATOR)
    assert bad_id.status_code == 422


@pytest.mark.asyncio
async def test_identity_secret_rotation_and_token_issue(env: Env) -> None:
    client = env.client
    secret = (await client.get("/v1/admin/tenants/acme/identity-secret", headers=OPERATOR)).json()[
        "identity_secret"
    ]
    assert secret == env.identity_secret
    token = (
        await client.post(
            "/v1/admin/tenants/acme/identity-tokens", json={"user_id": "cust_1"}, headers=OPERATOR
        )
    ).json()["token"]
    assert (
        await client.get("/v1/conversations", headers={**env.widget(), "X-End-User-Token": token})
    ).status_code == 200
    rotated = (await client.post("/v1/admin/tenants/acme/identity-secret", headers=OPERATOR)).json()[
        "identity_secret"
    ]
    assert rotated != secret
    stale = await client.get("/v1/conversations", headers={**env.widget(), "X-End-User-Token": token})
    assert stale.status_code == 401


@pytest.mark.asyncio
async def test_key_for_another_tenant_cannot_reach_first_tenants_data(env: Env) -> None:
    await create_tenant(env.client, "globex")
    globex_key = await create_key(env.client, "globex", "server")
    response = await env.client.get(
        "/v1/conversations/abc", headers={"Authorization": f"Bearer {globex_key}", "X-Tenant-ID": "acme"}
    )
    assert response.status_code == 200
    assert env.upstream.last("/internal/v1/conversations").headers["X-Tenant-ID"] == "globex"


@pytest.mark.asyncio
async def test_concurrent_requests_share_one_key_lookup(env: Env) -> None:
    import asyncio

    from sqlalchemy import event

    gateway = env.app.state.lifespan_state["runtime"]
    lookups = 0

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        nonlocal lookups
        if "FROM gateway_api_keys JOIN gateway_tenants" in statement:
            lookups += 1

    engine = gateway.platform.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        gateway.resolver._cache.clear()
        responses = await asyncio.gather(
            *(env.client.get("/v1/kbs", headers=env.server()) for _ in range(20))
        )
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert all(r.status_code == 200 for r in responses)
    assert lookups == 1
