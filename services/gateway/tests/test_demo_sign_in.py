"""The demo page's sign-in route: it signs only the configured demo CRM customer with the demo tenant's
identity secret, the token is accepted as that customer's identity, and production has no such route."""

from __future__ import annotations

from pathlib import Path

import pytest

from switchboard_gateway.auth.identity import verify_identity
from switchboard_gateway.main import create_app

from .conftest import FakeUpstream, create_tenant, make_settings, running


@pytest.mark.asyncio
async def test_demo_sign_in_signs_the_demo_customer(
    upstream: FakeUpstream, tmp_path: Path, sqlite_url: str
) -> None:
    app = create_app(make_settings(sqlite_url, upstream.url, tmp_path, demo_tenant_id="demo"))
    async with running(app) as client:
        missing = await client.post("/demo/identity-token")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
        tenant = await create_tenant(client, "demo")
        signed = await client.post("/demo/identity-token", json={"user_id": "C-2002"})
        assert signed.status_code == 200, signed.text
        body = signed.json()
        assert body["user_id"] == "C-1001", "the body cannot choose who is signed in"
        assert verify_identity(tenant["identity_secret"], body["token"]).user_id == "C-1001"


@pytest.mark.asyncio
async def test_no_demo_sign_in_in_production(upstream: FakeUpstream, tmp_path: Path, sqlite_url: str) -> None:
    settings = make_settings(
        sqlite_url,
        upstream.url,
        tmp_path,
        environment="production",
        internal_token="internal-production-strength-0123456789abcdef",
    )
    async with running(create_app(settings)) as client:
        await create_tenant(client, "demo")
        refused = await client.post("/demo/identity-token")
        assert refused.status_code in (404, 405), refused.text
        assert "token" not in refused.text
