"""Attacks on the LLM provider chain through the running fleet: a tenant that sets its own provider base
URL without its own key must never get the fleet's key sent there, and a tenant-chosen base URL passes
the same address guard as every other URL the fleet fetches on a tenant's behalf."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from .fleet import ReliabilityFleet, make_tenant, retrying
from .recorder import Recorder, recorder

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]
__all__ = ["recorder"]  # the fixture
FLEET_KEY = "sk-standin-secret-llm-key"  # CHAT_OPENAI_COMPATIBLE_API_KEY of the fleet (fleet.py)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def tenant(fleet: ReliabilityFleet) -> dict[str, str]:
    return make_tenant(fleet.gateway, "keythief")


def configure(fleet: ReliabilityFleet, tenant: dict[str, str], config: dict[str, Any]) -> None:
    body = {"providers": ["openai-compatible"], "provider_configs": {"openai-compatible": config}}
    put = httpx.put(
        f"{fleet.gateway}/v1/assistant", json=body, headers=bearer(tenant["admin_key"]), timeout=10
    )
    assert put.status_code == 200, put.text


def ask(fleet: ReliabilityFleet, tenant: dict[str, str], user: str) -> str:
    headers = {**bearer(tenant["server_key"]), "X-End-User-ID": user}
    with httpx.Client(base_url=fleet.gateway, headers=headers, timeout=40) as client:
        conversation = retrying(client, "POST", "/v1/conversations", json={"end_user_id": user})
        turn = retrying(
            client,
            "POST",
            f"/v1/conversations/{conversation.json()['id']}/messages",
            json={"text": "How long does shipping take?"},
        )
        assert turn.status_code == 200, turn.text
        return str((turn.json().get("reply") or {}).get("text", ""))


def test_fleet_key_never_goes_to_a_tenant_base_url(fleet: ReliabilityFleet, tenant: dict[str, str]) -> None:
    # The stand-in under another name than the fleet's own base URL: a URL the tenant chose (and the
    # operator allow-listed, so only the key rule stands between the fleet key and it).
    tenant_url = f"http://localhost:{fleet.llm.app.port}/v1"
    seen = len(fleet.llm.headers)
    try:
        configure(fleet, tenant, {"base_url": tenant_url})
        ask(fleet, tenant, "thief-1")
        sent = fleet.llm.headers[seen:]
        assert all(FLEET_KEY not in h.get("authorization", "") for h in sent), sent
        # With its own key, the tenant's own URL gets the tenant's key (and never the fleet's).
        seen = len(fleet.llm.headers)
        configure(fleet, tenant, {"base_url": tenant_url, "api_key": "sk-keythief-own-key"})
        ask(fleet, tenant, "thief-2")
        sent = fleet.llm.headers[seen:]
        assert sent, "the tenant's own provider was not asked"
        assert all(h.get("authorization") == "Bearer sk-keythief-own-key" for h in sent), sent
    finally:
        configure(fleet, tenant, {})


def test_provider_base_url_passes_the_address_guard(
    fleet: ReliabilityFleet, tenant: dict[str, str], recorder: Recorder
) -> None:
    targets = [
        f"http://127.0.0.1:{recorder.port}/v1",
        f"http://127.1:{recorder.port}/v1",
        f"http://[::ffff:127.0.0.1]:{recorder.port}/v1",
        f"http://2130706433:{recorder.port}/v1",
    ]
    try:
        for url in targets:
            put = httpx.put(
                f"{fleet.gateway}/v1/assistant",
                json={
                    "providers": ["openai-compatible"],
                    "provider_configs": {
                        "openai-compatible": {"base_url": url, "api_key": "sk-keythief-own"}
                    },
                },
                headers=bearer(tenant["admin_key"]),
                timeout=10,
            )
            if put.status_code == 200:
                ask(fleet, tenant, "thief-3")
            else:
                assert put.status_code in (400, 422), put.text
        assert not recorder.hits, f"a provider call reached a loopback service: {recorder.hits}"
    finally:
        configure(fleet, tenant, {})
