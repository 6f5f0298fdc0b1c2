"""Attack: spend the tenant's LLM tokens without paying them, by hanging up before the answer ends.

The daily token budget must be charged with what was generated wherever the stream ends: the client leaving
after the first token (SSE) or before the JSON answer arrives must not make a long question free.
"""

from __future__ import annotations

import time

import httpx
import pytest

from switchboard_shared.contracts.chat import TokenPacket, decode_sse

from .fleet import OPERATOR_TOKEN, ReliabilityFleet, make_tenant, retrying

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]
QUESTION = "How long does standard shipping take for a parcel? " * 70  # about 3,600 characters


def tokens_used(fleet: ReliabilityFleet, tenant: str) -> int:
    usage = httpx.get(
        f"{fleet.gateway}/v1/admin/tenants/{tenant}/usage",
        headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"},
        timeout=10,
    )
    assert usage.status_code == 200, usage.text
    return int(usage.json()["tokens"])


def wait_for_tokens(fleet: ReliabilityFleet, tenant: str, at_least: int, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    used = tokens_used(fleet, tenant)
    while used < at_least and time.monotonic() < deadline:
        time.sleep(0.5)
        used = tokens_used(fleet, tenant)
    return used


@pytest.mark.parametrize("mode", ["sse", "json"])
def test_a_client_that_hangs_up_still_pays(fleet: ReliabilityFleet, mode: str) -> None:
    tenant = f"hangup-{mode}"
    keys = make_tenant(fleet.gateway, tenant)
    headers = {"Authorization": f"Bearer {keys['server_key']}", "X-End-User-ID": "leaver"}
    with httpx.Client(base_url=fleet.gateway, headers=headers, timeout=30) as client:
        conversation = retrying(client, "POST", "/v1/conversations", json={"end_user_id": "leaver"}).json()[
            "id"
        ]
    assert tokens_used(fleet, tenant) == 0
    question_tokens = len(QUESTION) // 4
    fleet.llm.mode, fleet.llm.hang = "stall", 4.0  # the answer starts, then takes its time
    try:
        url = f"{fleet.gateway}/v1/conversations/{conversation}/messages"
        if mode == "sse":
            with (
                httpx.Client(headers={**headers, "Accept": "text/event-stream"}, timeout=30) as client,
                client.stream("POST", url, json={"text": QUESTION}) as response,
            ):
                assert response.status_code == 200
                for packet in decode_sse(response.iter_lines()):
                    if isinstance(packet, TokenPacket):
                        break  # hang up after the first token
        else:
            with pytest.raises(httpx.ReadTimeout):
                httpx.post(url, json={"text": QUESTION}, headers=headers, timeout=httpx.Timeout(30, read=1.0))
        used = wait_for_tokens(fleet, tenant, question_tokens)
    finally:
        fleet.llm.mode = "ok"
    assert used >= question_tokens, f"{used} tokens charged for a question of about {question_tokens}"
    # The answer generated after the hang-up is charged too (the turn finishes: its reply is stored).
    time.sleep(8)
    with httpx.Client(base_url=fleet.gateway, headers=headers, timeout=30) as client:
        messages = client.get(f"/v1/conversations/{conversation}").json()["messages"]
    reply = next(m["text"] for m in reversed(messages) if m["role"] == "assistant")
    assert tokens_used(fleet, tenant) >= question_tokens + len(reply) // 4
