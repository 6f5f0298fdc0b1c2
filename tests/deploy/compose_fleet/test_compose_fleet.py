"""The composed fleet end to end: every image built, `docker compose up --wait`, the product driven through
the gateway's published port only (`make test-deploy`, scripts/test-deploy.sh).

The script sets ``COMPOSE_FLEET=1``, the gateway's URL, the operator token and the compose command (one
argument a line); without them these tests skip. The steps run in order and share one story: a tenant and its
keys, a document, a conversation answered from it, a handoff to a person and back, the analytics reports
showing all of it, then a service killed under the fleet, restarted by compose, and nothing it was sent lost.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.skipif(
    os.environ.get("COMPOSE_FLEET") != "1",
    reason="drives the composed fleet of `make test-deploy` (scripts/test-deploy.sh sets COMPOSE_FLEET=1)",
)

TENANT = "compose-e2e"
CUSTOMER = "compose-customer"
OPERATOR = "op-compose"
RETURNS = (
    "# Returns\n\nYou can return any item within thirty days of delivery for a full refund. "
    "Print the prepaid label from your order page and drop the parcel at any post office.\n"
)
QUESTION = "How many days do I have to return an item?"


def eventually(read: Callable[[], Any], ready: Callable[[Any], bool], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    value = read()
    while not ready(value) and time.monotonic() < deadline:
        time.sleep(0.5)
        value = read()
    return value


class Story:
    """What the steps hand on to each other (a step whose predecessor failed fails at once)."""

    def __init__(self) -> None:
        self.gateway = os.environ.get("COMPOSE_FLEET_GATEWAY_URL", "")
        self.operator_token = os.environ.get("COMPOSE_FLEET_OPERATOR_TOKEN", "")
        self.compose = [arg for arg in os.environ.get("COMPOSE_FLEET_COMPOSE", "").splitlines() if arg]
        self.values: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self.values:
            pytest.fail(f"an earlier step did not produce {name!r}")
        return self.values[name]

    def __setitem__(self, name: str, value: Any) -> None:
        self.values[name] = value

    def client(self, key: str, **headers: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.gateway,
            headers={"Authorization": f"Bearer {key}", **headers},
            timeout=60.0,
        )

    def customer(self) -> httpx.Client:
        return self.client(self["server_key"], **{"X-End-User-ID": CUSTOMER})

    def run_compose(self, *args: str) -> str:
        completed = subprocess.run(
            [*self.compose, *args], capture_output=True, text=True, timeout=60, check=False
        )
        assert completed.returncode == 0, completed.stderr
        return completed.stdout

    def report(self, name: str) -> dict[str, Any]:
        today = datetime.now(UTC).date()
        period = {"start": (today - timedelta(days=1)).isoformat(), "end": today.isoformat(), "tz": "UTC"}
        with self.client(self["server_key"]) as operator:
            response = operator.get(f"/v1/analytics/{name}", params=period)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture(scope="module")
def story() -> Iterator[Story]:
    yield Story()


def container_state(story: Story, service: str) -> dict[str, Any]:
    (container,) = story.run_compose("ps", "--quiet", service).split()
    inspected = subprocess.run(
        ["docker", "inspect", container], capture_output=True, text=True, timeout=30, check=True
    )
    state: dict[str, Any] = json.loads(inspected.stdout)[0]
    return state


def test_the_gateway_is_ready_and_every_service_healthy(story: Story) -> None:
    ready = httpx.get(f"{story.gateway}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    states = [json.loads(line) for line in story.run_compose("ps", "--all", "--format", "json").splitlines()]
    by_name = {state["Service"]: state for state in states}
    for name in ("gateway", "chat", "retrieval", "integrations", "analytics", "console", "demo-crm"):
        assert by_name[name]["State"] == "running" and by_name[name]["Health"] == "healthy", by_name[name]
    for name in ("gateway", "chat", "retrieval", "integrations", "analytics"):
        migrate = by_name[f"migrate-{name}"]
        assert (migrate["State"], migrate["ExitCode"]) == ("exited", 0), migrate


def test_a_tenant_and_its_keys_through_the_admin_api(story: Story) -> None:
    with story.client(story.operator_token) as operator:
        created = operator.post("/v1/admin/tenants", json={"id": TENANT, "name": "Compose end to end"})
        assert created.status_code == 201, created.text
        for scope in ("server", "admin"):
            key = operator.post(f"/v1/admin/tenants/{TENANT}/keys", json={"scope": scope, "name": scope})
            assert key.status_code == 201, key.text
            story[f"{scope}_key"] = key.json()["key"]
    assert story["server_key"].startswith("sk_") and story["admin_key"].startswith("ak_")


def test_a_document_is_ingested(story: Story) -> None:
    with story.client(story["server_key"]) as client:
        kb = client.post("/v1/kbs", json={"name": "help"})
        assert kb.status_code == 201, kb.text
        files = [("files", ("returns.md", RETURNS.encode(), "text/markdown"))]
        upload = client.post(f"/v1/kbs/{kb.json()['id']}/files", files=files)
        assert upload.status_code == 202, upload.text
        job = eventually(
            lambda: client.get(f"/v1/jobs/{upload.json()['job']['id']}").json(),
            lambda job: job["status"] in ("succeeded", "failed"),
            timeout=180,
        )
    assert job["status"] == "succeeded", job


def test_a_conversation_is_answered_with_a_citation(story: Story) -> None:
    with story.customer() as client:
        created = client.post("/v1/conversations", json={"end_user_id": CUSTOMER})
        assert created.status_code == 201, created.text
        story["conversation"] = cid = created.json()["id"]
        answered = client.post(f"/v1/conversations/{cid}/messages", json={"text": QUESTION})
    assert answered.status_code == 200, answered.text
    reply = answered.json()["reply"]
    assert reply["citations"], reply
    assert reply["citations"][0]["title"] == "Returns", reply["citations"]
    assert "thirty days" in reply["text"], reply["text"]


def test_a_handoff_to_a_person_and_back_to_the_bot(story: Story) -> None:
    cid = story["conversation"]
    with story.customer() as customer, story.client(story["admin_key"]) as admin:
        asked = customer.post(f"/v1/conversations/{cid}/handoff")
        assert asked.status_code in (200, 201), asked.text
        handoffs = admin.get("/v1/handoffs", params={"limit": 100}).json()["items"]
        (handoff,) = [h for h in handoffs if h["conversation_id"] == cid]
        claimed = admin.post(f"/v1/handoffs/{handoff['id']}/claim", json={"operator_id": OPERATOR})
        assert claimed.status_code == 200, claimed.text
        sent = admin.post(
            f"/v1/handoffs/{handoff['id']}/reply",
            json={
                "text": "Hello, this is Dana: the label is on your order page.",
                "operator_id": OPERATOR,
                "idempotency_key": "compose-e2e-1",
            },
        )
        assert sent.status_code in (200, 201), sent.text
        conversation = customer.get(f"/v1/conversations/{cid}").json()
        assert conversation["owner"] == "human", conversation
        operator_lines = [m for m in conversation["messages"] if m["role"] == "operator"]
        assert [m["text"] for m in operator_lines] == [
            "Hello, this is Dana: the label is on your order page."
        ]
        returned = admin.post(f"/v1/handoffs/{handoff['id']}/return", json={"operator_id": OPERATOR})
        assert returned.status_code == 200, returned.text
        assert customer.get(f"/v1/conversations/{cid}").json()["owner"] == "bot"
        again = customer.post(f"/v1/conversations/{cid}/messages", json={"text": QUESTION})
    assert again.status_code == 200, again.text
    assert again.json()["reply"]["citations"], again.json()
    story["customer_messages"] = 2


def test_the_analytics_reports_show_the_conversation_and_the_handoff(story: Story) -> None:
    expected = story["customer_messages"]
    overview = eventually(
        lambda: story.report("overview"),
        # Every service sends its events in batches of its own: wait for each kind the test counts.
        lambda r: (
            r["volume"]["customer_messages"] >= expected
            and r["volume"]["answers"] >= expected
            and r["volume"]["operator_replies"] >= 1
            and r["volume"]["handoffs"] >= 1
        ),
    )
    volume = overview["volume"]
    assert (volume["conversations"], volume["customer_messages"], volume["answers"]) == (1, 2, 2), volume
    assert (volume["handoffs"], volume["operator_replies"]) == (1, 1), volume
    assert overview["escalations"]["handoffs"] == 1, overview["escalations"]
    assert overview["escalations"]["escalated_conversations"] == 1, overview["escalations"]


def test_a_killed_service_is_restarted_by_compose_and_nothing_sent_meanwhile_is_lost(story: Story) -> None:
    """SIGKILL to analytics' process (a crash, not `docker stop`): compose's restart policy brings it back;
    the turn answered while it was down reaches the reports once it is (the senders keep their batches)."""
    cid = story["conversation"]
    before = container_state(story, "analytics")
    os.kill(before["State"]["Pid"], signal.SIGKILL)
    with story.customer() as client:
        answered = client.post(f"/v1/conversations/{cid}/messages", json={"text": QUESTION})
    assert answered.status_code == 200, answered.text
    assert answered.json()["reply"]["citations"], answered.json()
    after = eventually(
        lambda: container_state(story, "analytics"),
        lambda s: (
            s["RestartCount"] > before["RestartCount"]
            and s["State"].get("Health", {}).get("Status") == "healthy"
        ),
        timeout=120,
    )
    assert after["RestartCount"] == before["RestartCount"] + 1, after["State"]
    assert after["State"]["Health"]["Status"] == "healthy", after["State"]
    overview = eventually(
        lambda: story.report("overview"),
        lambda r: r["volume"]["customer_messages"] >= 3 and r["volume"]["answers"] >= 3,
        timeout=90,
    )
    volume = overview["volume"]
    assert (volume["conversations"], volume["customer_messages"], volume["answers"]) == (1, 3, 3), volume
    with story.customer() as client:
        transcript = client.get(f"/v1/conversations/{cid}").json()["messages"]
    assert [m["text"] for m in transcript if m["role"] == "user"] == [QUESTION] * 3
