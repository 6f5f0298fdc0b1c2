"""Attack: claim someone else's identity in the request body to read their account and orders.

An end user verified as themselves (a valid identity token for their own id) adds another customer's e-mail
and CRM id to the create-conversation body. Who a customer is comes only from the identity token's claims,
so the CRM must never be asked about the claimed customer.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from switchboard_gateway.auth.identity import sign_identity

from .attack_helpers import ORIGIN, extractive_demo  # noqa: F401 - a fixture
from .fleet import ReliabilityFleet

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]
VICTIM_EMAIL = "anna.petrova@example.ru"
VICTIM_TRACKING = "RU123456789"


def ask(fleet: ReliabilityFleet, headers: dict[str, str], conversation_id: str, text: str) -> str:
    turn = httpx.post(
        f"{fleet.gateway}/v1/conversations/{conversation_id}/messages",
        json={"text": text},
        headers=headers,
        timeout=60,
    )
    assert turn.status_code == 200, turn.text
    return str((turn.json().get("reply") or {}).get("text", ""))


@pytest.mark.usefixtures("extractive_demo")
def test_profile_in_the_body_never_chooses_the_crm_customer(fleet: ReliabilityFleet) -> None:
    token = sign_identity(fleet.demo["identity_secret"], "visitor-77")
    headers = {
        "Authorization": f"Bearer {fleet.demo['widget_key']}",
        "Origin": ORIGIN,
        "X-End-User-Token": token,
    }
    body: dict[str, Any] = {
        "end_user_id": "visitor-77",
        "profile": {"name": "Anna", "email": VICTIM_EMAIL, "crm_id": "C-1001"},
    }
    created = httpx.post(f"{fleet.gateway}/v1/conversations", json=body, headers=headers, timeout=30)
    replies = []
    if created.status_code < 400:
        replies.append(ask(fleet, headers, created.json()["id"], "Where is my order A-1001?"))
        replies.append(ask(fleet, headers, created.json()["id"], "Show my account details"))
    else:
        assert created.status_code in (403, 422), created.text
    # Without the identity fields the conversation opens; the CRM is asked about visitor-77 only.
    plain = httpx.post(
        f"{fleet.gateway}/v1/conversations",
        json={"end_user_id": "visitor-77", "profile": {"name": "Anna", "locale": "en"}},
        headers=headers,
        timeout=30,
    )
    assert plain.status_code == 201, plain.text
    replies.append(ask(fleet, headers, plain.json()["id"], "Where is my order A-1001?"))
    replies.append(ask(fleet, headers, plain.json()["id"], "Show my account details"))
    for reply in replies:
        assert VICTIM_TRACKING not in reply and VICTIM_EMAIL not in reply, reply
        assert "Анна" not in reply and "Petrova" not in reply, reply
    assert created.status_code in (403, 422), "a widget body may not say who the customer is"


@pytest.mark.usefixtures("extractive_demo")
def test_identity_token_claims_choose_the_crm_customer(fleet: ReliabilityFleet) -> None:
    """The tenant's backend may name the CRM customer, inside the token it signs."""
    token = sign_identity(fleet.demo["identity_secret"], "site-user-501", claims={"email": VICTIM_EMAIL})
    headers = {
        "Authorization": f"Bearer {fleet.demo['widget_key']}",
        "Origin": ORIGIN,
        "X-End-User-Token": token,
    }
    created = httpx.post(
        f"{fleet.gateway}/v1/conversations",
        json={"end_user_id": "site-user-501"},
        headers=headers,
        timeout=30,
    )
    assert created.status_code == 201, created.text
    reply = ask(fleet, headers, created.json()["id"], "Where is my order A-1001?")
    assert VICTIM_TRACKING in reply, reply
