"""Attack: a widget user picks the provider chain (``PostMessage.providers``), a cost lever that reaches the
fleet's provider keys. Only the tenant's own secret keys (server, admin: the console) may override the chain,
and only with providers the tenant allows."""

from __future__ import annotations

import httpx
import pytest

from .attack_helpers import ORIGIN, extractive_demo  # noqa: F401 - a fixture
from .fleet import ReliabilityFleet, retrying

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]


@pytest.mark.usefixtures("extractive_demo")
def test_widget_users_cannot_choose_providers(fleet: ReliabilityFleet) -> None:
    widget = {
        "Authorization": f"Bearer {fleet.demo['widget_key']}",
        "Origin": ORIGIN,
        "X-Anonymous-ID": "provider-chooser-1",
    }
    with httpx.Client(base_url=fleet.gateway, headers=widget, timeout=60) as client:
        conversation = retrying(
            client, "POST", "/v1/conversations", json={"end_user_id": "anon:provider-chooser-1"}
        ).json()["id"]
        asked = len(fleet.llm.requests)
        turn = client.post(
            f"/v1/conversations/{conversation}/messages",
            json={"text": "How long does shipping take?", "providers": ["openai-compatible"]},
        )
    assert len(fleet.llm.requests) == asked, "a widget user's chain reached the fleet's LLM"
    assert turn.status_code == 403, turn.text
    assert turn.json()["error"]["code"] == "forbidden"


@pytest.mark.usefixtures("extractive_demo")
def test_server_keys_override_only_within_the_tenants_providers(fleet: ReliabilityFleet) -> None:
    server = {"Authorization": f"Bearer {fleet.demo['server_key']}", "X-End-User-ID": "chain-tester"}
    with httpx.Client(base_url=fleet.gateway, headers=server, timeout=60) as client:
        conversation = retrying(
            client, "POST", "/v1/conversations", json={"end_user_id": "chain-tester"}
        ).json()["id"]
        asked = len(fleet.llm.requests)
        outside = client.post(
            f"/v1/conversations/{conversation}/messages",
            json={"text": "How long does shipping take?", "providers": ["openai-compatible"]},
        )
        assert len(fleet.llm.requests) == asked, "a provider outside the tenant's chain was called"
        assert outside.status_code == 403, outside.text
        inside = client.post(
            f"/v1/conversations/{conversation}/messages",
            json={"text": "How long does shipping take?", "providers": ["extractive"]},
        )
    assert inside.status_code == 200, inside.text
    assert inside.json()["reply"]["provider"] == "extractive"
