"""Faults under load: while simulated customers talk to the fleet through the gateway, each dependency in
turn is killed and restarted (or made to fail), and the customers' view and the stored messages are checked.

Each test records its fault in ``RECORDS``; the last test writes them to
``test-output/reliability/faults.json`` and prints the table (run with ``-s``).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from switchboard_gateway.auth.identity import sign_identity

from .fleet import INTERNAL_TOKEN, OPERATOR_TOKEN, ReliabilityFleet, metric_total, wait_job
from .load import Customer, LoadRun

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

KB_DOWN = "Our knowledge base is unavailable right now"
TOOLS_DOWN = "I cannot reach our account and order systems right now"
HOLD_SECONDS = 5.0
RECOVERY_TIMEOUT = 120.0
RECORDS: dict[str, FaultRecord] = {}


@dataclass
class FaultRecord:
    fault: str
    recovery_seconds: float | None = None
    acknowledged: int = 0
    lost: int = 0
    duplicated: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    degraded_answers: int = 0
    providers: dict[str, int] = field(default_factory=dict)
    breakers_opened: list[str] = field(default_factory=list)
    breakers_closed_after: bool = False
    max_response_seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def load(fleet: ReliabilityFleet) -> Iterator[LoadRun]:
    operator = bearer(OPERATOR_TOKEN)
    patch = httpx.patch(
        f"{fleet.gateway}/v1/admin/tenants/demo",
        json={"daily_message_budget": -1, "daily_token_budget": -1, "end_user_requests_per_minute": 0},
        headers=operator,
    )
    assert patch.status_code == 200, patch.text
    keys = {}
    for scope in ("server", "widget"):
        body: dict[str, Any] = {"scope": scope, "name": f"load-{scope}", "requests_per_minute": 1_000_000}
        if scope == "widget":
            body["allowed_origins"] = ["http://localhost:*"]
        created = httpx.post(f"{fleet.gateway}/v1/admin/tenants/demo/keys", json=body, headers=operator)
        assert created.status_code == 201, created.text
        keys[scope] = created.json()["key"]
    customers = []
    for number in range(6):
        user = f"load-visitor-{number}"
        customers.append(
            Customer({**bearer(keys["server"]), "X-End-User-ID": user}, verified=False, end_user_id=user)
        )
    token = sign_identity(fleet.demo["identity_secret"], "C-2001", ttl_seconds=3600)
    for _ in range(2):
        headers = {**bearer(keys["widget"]), "Origin": "http://localhost:3000", "X-End-User-Token": token}
        customers.append(Customer(headers, verified=True, end_user_id="C-2001"))
    run = LoadRun(fleet.gateway, customers).start()
    time.sleep(3)
    yield run
    run.finish()


class BreakerWatch:
    """Polls the gateway's and chat replicas' /readyz and remembers every breaker seen not closed."""

    def __init__(self, fleet: ReliabilityFleet) -> None:
        self.fleet = fleet
        self.opened: set[str] = set()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            for name in ("gateway", "chat-a", "chat-b"):
                try:
                    body = self.fleet.readyz(name)
                except (httpx.HTTPError, ValueError):
                    continue
                for breaker, state in body.get("breakers", {}).items():
                    if state != "closed":
                        self.opened.add(f"{name}->{breaker}:{state}")
            self.stop.wait(0.3)

    def __enter__(self) -> BreakerWatch:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)


def ask(
    fleet: ReliabilityFleet,
    text: str,
    *,
    user: str = "probe-user",
    verified: bool = False,
    providers: list[str] | None = None,
) -> Any:
    headers = {**bearer(fleet.demo["server_key"]), "X-End-User-ID": user}
    if verified:
        headers["X-End-User-Verified"] = "1"
    with httpx.Client(base_url=fleet.gateway, headers=headers, timeout=40.0) as client:
        created = client.post("/v1/conversations", json={"end_user_id": user})
        if created.status_code not in (200, 201):
            return None
        body: dict[str, Any] = {"text": text}
        if providers:
            body["providers"] = providers
        turn = client.post(f"/v1/conversations/{created.json()['id']}/messages", json=body)
        return turn.json() if turn.status_code == 200 else None


def breakers_closed(fleet: ReliabilityFleet) -> bool:
    for name in ("gateway", "chat-a", "chat-b"):
        try:
            body = fleet.readyz(name)
        except (httpx.HTTPError, ValueError):
            return False
        if any(state != "closed" for state in body.get("breakers", {}).values()):
            return False
    return True


def stored_counts(fleet: ReliabilityFleet, acked: list[tuple[str, str, str]]) -> tuple[int, int]:
    """(lost, duplicated) among acknowledged messages, read from chat's database."""
    if not acked:
        return 0, 0
    rows = fleet.chat_db(
        "SELECT client_message_id, count(*) AS n FROM chat_messages "
        "WHERE role = 'user' AND client_message_id = ANY($1::text[]) GROUP BY client_message_id",
        [client_id for _, _, client_id in acked],
    )
    counts = {row["client_message_id"]: row["n"] for row in rows}
    lost = sum(1 for _, _, client_id in acked if counts.get(client_id, 0) == 0)
    duplicated = sum(n - 1 for n in counts.values() if n > 1)
    return lost, duplicated


def run_fault(
    fleet: ReliabilityFleet,
    load: LoadRun,
    name: str,
    inject: Callable[[], None],
    restore: Callable[[], None],
    recovered: Callable[[], bool],
    *,
    hold: float = HOLD_SECONDS,
) -> FaultRecord:
    record = FaultRecord(name)
    load.phase = name
    with BreakerWatch(fleet) as watch:
        started = time.time()
        inject()
        time.sleep(hold)
        restore_at = time.monotonic()
        record.notes["restore_at"] = time.time()
        record.notes["fault_at"] = started
        restore()
        deadline = restore_at + RECOVERY_TIMEOUT
        while time.monotonic() < deadline:
            if recovered():
                record.recovery_seconds = round(time.monotonic() - restore_at, 2)
                break
            time.sleep(0.5)
        load.phase = f"{name}:after"
        closed_deadline = time.monotonic() + 20
        while time.monotonic() < closed_deadline and not breakers_closed(fleet):
            time.sleep(0.5)
        record.breakers_closed_after = breakers_closed(fleet)
        time.sleep(1.5)
    record.breakers_opened = sorted(watch.opened)
    phase_outcomes = [o for o in load.outcomes if o.phase in (name, f"{name}:after")]
    record.statuses = dict(Counter(str(o.status) for o in phase_outcomes))
    record.providers = dict(Counter(o.provider for o in phase_outcomes if o.provider))
    record.degraded_answers = sum(
        1 for o in phase_outcomes if o.text and (KB_DOWN in o.text or TOOLS_DOWN in o.text)
    )
    record.notes["sample_replies"] = sorted({o.text[:120] for o in phase_outcomes if o.text})[:4]
    record.max_response_seconds = round(max((o.elapsed for o in phase_outcomes), default=0.0), 2)
    for outcome in phase_outcomes:
        if outcome.status == 0:
            record.problems.append(f"no answer within {load.request_timeout}s: {outcome.error}")
        elif outcome.status == -1:
            record.problems.append(f"connection failed: {outcome.error}")
        elif outcome.status >= 500 and (outcome.status != 503 or not outcome.retry_after):
            record.problems.append(f"{outcome.status} {outcome.code} retry-after={outcome.retry_after}")
        elif outcome.code == "<not the shared error shape>":
            record.problems.append(f"{outcome.status} not in the error shape: {outcome.text}")
        elif 400 <= outcome.status < 500 and outcome.status not in (409, 429):
            record.problems.append(f"{outcome.status} {outcome.code}")
    acked = [entry for entry in load.acked if entry[0] in (name, f"{name}:after")]
    record.acknowledged = len(acked)
    # Give an in-flight retry a moment to land before counting.
    record.lost, record.duplicated = stored_counts(fleet, acked)
    RECORDS[name] = record
    return record


def check(record: FaultRecord, *, bare_500_asserted_elsewhere: bool = False) -> None:
    assert record.recovery_seconds is not None, f"{record.fault} did not recover in {RECOVERY_TIMEOUT}s"
    assert record.lost == 0 and record.duplicated == 0, asdict(record)
    problems = [p for p in record.problems if not (bare_500_asserted_elsewhere and p.startswith("500 "))]
    assert not problems, problems[:10]
    assert record.breakers_closed_after, f"breakers still open after {record.fault}: {record.breakers_opened}"
    assert record.acknowledged > 0, "the load made no progress"


def answered_with_sources(fleet: ReliabilityFleet) -> bool:
    turn = ask(fleet, "How long does standard shipping take?")
    return bool(turn and turn.get("sources") and KB_DOWN not in (turn["reply"] or {}).get("text", ""))


def order_answered(fleet: ReliabilityFleet) -> bool:
    """A verified customer asks about their order through a server key (extractive tools).

    Not C-2001: the load's signed-in customers are C-2001 and keep its per-end-user limit busy. A server key,
    since only server keys may pick the extractive provider (the demo chain starts with the LLM stand-in,
    which calls no tools); the widget's HMAC identity path is attacked in test_attack_crm_identity.
    """
    turn = ask(
        fleet, "What is the status of order A-1001?", user="C-1001", verified=True, providers=["extractive"]
    )
    text = ((turn or {}).get("reply") or {}).get("text", "")
    return "A-1001" in text and TOOLS_DOWN not in text


def crm_lookup(fleet: ReliabilityFleet) -> httpx.Response:
    """The order lookup chat's tool makes, on behalf of a verified customer (integrations' internal API)."""
    return httpx.post(
        f"{fleet.url('integrations')}/internal/v1/crm/orders/lookup",
        json={"order_number": "B-2001", "customer_id": "C-2001"},
        headers={
            "X-Internal-Token": INTERNAL_TOKEN,
            "X-Tenant-ID": "demo",
            "X-End-User-ID": "C-2001",
            "X-End-User-Verified": "1",
        },
        timeout=30,
    )


def crm_answers(fleet: ReliabilityFleet) -> bool:
    try:
        return crm_lookup(fleet).status_code == 200
    except httpx.HTTPError:
        return False


def tickets_listed(fleet: ReliabilityFleet) -> bool:
    response = httpx.get(f"{fleet.gateway}/v1/tickets", headers=bearer(fleet.demo["server_key"]), timeout=10)
    return response.status_code == 200 and crm_answers(fleet)


def turn_ok(fleet: ReliabilityFleet) -> bool:
    turn = ask(fleet, "Can I return an item after 30 days?")
    return bool(turn and turn.get("reply"))


def test_baseline_under_load(fleet: ReliabilityFleet, load: LoadRun) -> None:
    record = run_fault(fleet, load, "baseline (no fault)", lambda: None, lambda: None, lambda: True, hold=3.0)
    check(record)
    assert record.providers.get("openai-compatible", 0) > 0, record.providers


INGESTION: dict[str, str] = {}


def test_retrieval_killed(fleet: ReliabilityFleet, load: LoadRun) -> None:
    """Retrieval is killed while it runs an ingestion job (the next test checks the job resumes)."""
    server = httpx.Client(base_url=fleet.gateway, headers=bearer(fleet.demo["server_key"]), timeout=60.0)
    kb = server.post("/v1/kbs", json={"name": "resume check", "embedding_model": "minilm"}).json()
    files = [
        (
            "files",
            (
                f"article-{n}.md",
                (f"# Article {n}\n\n" + f"Paragraph {n} about topic {n}. " * 120).encode(),
                "text/markdown",
            ),
        )
        for n in range(40)
    ]
    upload = server.post(f"/v1/kbs/{kb['id']}/files", files=files)
    assert upload.status_code == 202, upload.text
    INGESTION["job_id"] = job_id = upload.json()["job"]["id"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and server.get(f"/v1/jobs/{job_id}").json()["status"] == "queued":
        time.sleep(0.2)
    INGESTION["status_at_kill"] = server.get(f"/v1/jobs/{job_id}").json()["status"]
    process = fleet.processes["retrieval"]
    record = run_fault(
        fleet,
        load,
        "retrieval killed",
        lambda: process.stop(kill=True),
        lambda: process.start(ready_timeout=RECOVERY_TIMEOUT),
        lambda: answered_with_sources(fleet),
    )
    check(record)


def test_ingestion_job_of_killed_worker_resumes(fleet: ReliabilityFleet) -> None:
    assert INGESTION.get("job_id"), "the retrieval fault did not start a job"
    server = httpx.Client(base_url=fleet.gateway, headers=bearer(fleet.demo["server_key"]), timeout=60.0)
    job = wait_job(server, INGESTION["job_id"], timeout=60)
    RECORDS["retrieval killed"].notes["ingestion_job"] = {
        k: job[k] for k in ("status", "attempts", "documents_done", "error")
    }
    assert job["status"] == "succeeded" and job["documents_done"] == 40, job


def test_integrations_killed(fleet: ReliabilityFleet, load: LoadRun) -> None:
    process = fleet.processes["integrations"]
    record = run_fault(
        fleet,
        load,
        "integrations killed",
        lambda: process.stop(kill=True),
        lambda: process.start(ready_timeout=RECOVERY_TIMEOUT),
        lambda: tickets_listed(fleet),
    )
    check(record)


def test_verified_customer_gets_order_status(fleet: ReliabilityFleet) -> None:
    assert crm_answers(fleet), "the CRM lookup itself fails"
    assert order_answered(fleet)


def test_analytics_killed_events_arrive_or_are_counted(fleet: ReliabilityFleet, load: LoadRun) -> None:
    process = fleet.processes["analytics"]
    producers = ("chat-a", "chat-b", "gateway", "integrations", "retrieval")

    def dropped() -> float:
        return sum(
            metric_total(fleet.metrics(name), "switchboard_analytics_events_dropped_total")
            for name in producers
        )

    dropped_before = dropped()
    record = run_fault(
        fleet,
        load,
        "analytics killed",
        lambda: process.stop(kill=True),
        lambda: process.start(ready_timeout=RECOVERY_TIMEOUT),
        lambda: httpx.get(f"{fleet.url('analytics')}/readyz", timeout=3).status_code == 200,
    )
    fault_at, restore_at = record.notes["fault_at"], record.notes["restore_at"]
    during = [
        o
        for o in load.outcomes
        if o.phase == "analytics killed"
        and 200 <= o.status < 300
        and o.provider is not None
        and o.at - o.elapsed >= fault_at
        and o.at <= restore_at
    ]
    deadline = time.monotonic() + 30
    arrived = 0
    while time.monotonic() < deadline:
        arrived = fleet.db(
            "analytics",
            "SELECT count(*) AS n FROM analytics_events WHERE tenant_id = 'demo' AND type = 'message_received' "
            "AND occurred_at >= $1 AND occurred_at <= $2",
            datetime.fromtimestamp(fault_at, UTC),
            datetime.fromtimestamp(restore_at, UTC),
        )[0]["n"]
        if arrived >= len(during):
            break
        time.sleep(1)
    lost_events = dropped() - dropped_before
    record.notes["events"] = {
        "messages_during_outage": len(during),
        "arrived": arrived,
        "dropped": lost_events,
    }
    check(record)
    assert arrived + lost_events >= len(during), record.notes["events"]


def test_one_chat_replica_killed(fleet: ReliabilityFleet, load: LoadRun) -> None:
    process = fleet.processes["chat-a"]
    record = run_fault(
        fleet,
        load,
        "chat replica killed (1 of 2)",
        lambda: process.stop(kill=True),
        lambda: process.start(ready_timeout=RECOVERY_TIMEOUT),
        lambda: all(turn_ok(fleet) for _ in range(2)),
    )
    check(record)


def test_redis_restarted(fleet: ReliabilityFleet, load: LoadRun) -> None:
    record = run_fault(
        fleet, load, "redis restarted", fleet.redis.stop, fleet.redis.start, lambda: turn_ok(fleet)
    )
    check(record)


def test_ingestion_after_redis_restart(fleet: ReliabilityFleet) -> None:
    server = httpx.Client(base_url=fleet.gateway, headers=bearer(fleet.demo["server_key"]), timeout=60.0)
    kb = server.post("/v1/kbs", json={"name": "after redis", "embedding_model": "minilm"}).json()
    upload = server.post(
        f"/v1/kbs/{kb['id']}/files", files=[("files", ("a.md", b"# A\n\nShort text.", "text/markdown"))]
    )
    assert upload.status_code == 202, upload.text
    job = wait_job(server, upload.json()["job"]["id"], timeout=30)
    assert job["status"] == "succeeded", job


def test_postgres_restarted(fleet: ReliabilityFleet, load: LoadRun) -> None:
    record = run_fault(
        fleet,
        load,
        "postgresql restarted",
        lambda: fleet.postgres.stop("fast"),
        fleet.postgres.start,
        lambda: turn_ok(fleet),
    )
    check(record, bare_500_asserted_elsewhere=True)


def test_database_outage_answers_503_not_500(fleet: ReliabilityFleet) -> None:
    headers = {**bearer(fleet.demo["server_key"]), "X-End-User-ID": "db-outage"}
    created = httpx.post(
        f"{fleet.gateway}/v1/conversations", json={"end_user_id": "db-outage"}, headers=headers
    )
    assert created.status_code == 201, created.text
    statuses = []
    fleet.postgres.stop("fast")
    try:
        for number in range(4):
            response = httpx.post(
                f"{fleet.gateway}/v1/conversations/{created.json()['id']}/messages",
                json={"text": f"Is anyone there? {number}"},
                headers=headers,
                timeout=40,
            )
            statuses.append((response.status_code, response.headers.get("retry-after")))
    finally:
        fleet.postgres.start()
    pg_record = RECORDS.get("postgresql restarted")
    bare = [p for p in (pg_record.problems if pg_record else []) if p.startswith("500 ")]
    assert not bare, f"under load: {bare[:3]}; now: {statuses}"
    assert all(status == 503 and retry for status, retry in statuses), statuses


def provider_back(fleet: ReliabilityFleet) -> bool:
    turn = ask(fleet, "How do I reset my password?")
    return bool(turn and (turn.get("reply") or {}).get("provider") == "openai-compatible")


@pytest.mark.parametrize(
    "mode",
    [
        "error",
        "timeout",
        "stall",
    ],
)
def test_llm_failures_fall_through_to_extractive(fleet: ReliabilityFleet, load: LoadRun, mode: str) -> None:
    def inject() -> None:
        fleet.llm.hang = 20.0
        fleet.llm.mode = mode

    def restore() -> None:
        fleet.llm.mode = "ok"

    record = run_fault(fleet, load, f"llm {mode}", inject, restore, lambda: provider_back(fleet), hold=8.0)
    check(record)
    truncated = [
        o.text
        for o in load.outcomes
        if o.phase == record.fault and o.provider == "openai-compatible" and o.text and "[1]." not in o.text
    ]
    assert not truncated, f"cut-off LLM answers given as complete: {truncated[:3]}"
    assert record.providers.get("extractive", 0) > 0, record.providers


@pytest.mark.parametrize("mode", ["slow", "fail"])
def test_crm_slow_or_failing(fleet: ReliabilityFleet, load: LoadRun, mode: str) -> None:
    def inject() -> None:
        fleet.crm_fault.delay = 12.0
        fleet.crm_fault.mode = mode

    def restore() -> None:
        fleet.crm_fault.mode = "ok"

    def inject_and_observe() -> None:
        inject()
        started = time.monotonic()
        response = crm_lookup(fleet)
        elapsed = time.monotonic() - started
        record_notes["lookup_during_fault"] = {"status": response.status_code, "seconds": round(elapsed, 2)}
        # Served (from the CRM or its cache) or refused in the error shape; never a 500, never a hang
        # beyond the connector timeout (10 s) plus a retry.
        assert response.status_code in (200, 502, 503, 504), response.text
        if response.status_code != 200:
            assert response.json()["error"]["code"]
        assert elapsed < 25.0, elapsed

    record_notes: dict[str, Any] = {}
    record = run_fault(
        fleet, load, f"crm {mode}", inject_and_observe, restore, lambda: crm_answers(fleet), hold=4.0
    )
    record.notes.update(record_notes)
    check(record)


def test_write_fault_table(output_dir: str) -> None:
    rows = [asdict(record) for record in RECORDS.values()]
    with open(os.path.join(output_dir, "faults.json"), "w") as handle:
        json.dump(rows, handle, indent=2, default=str)
    header = (
        f"{'fault':32} {'recovery s':>10} {'acked':>6} {'lost':>5} {'dup':>4} {'degraded':>8} {'max s':>6}"
    )
    print("\n" + header)
    for record in RECORDS.values():
        recovery = "-" if record.recovery_seconds is None else f"{record.recovery_seconds:.2f}"
        print(
            f"{record.fault:32} {recovery:>10} {record.acknowledged:>6} {record.lost:>5} "
            f"{record.duplicated:>4} {record.degraded_answers:>8} {record.max_response_seconds:>6}"
        )
    assert RECORDS, "no fault ran"
    assert sum(r.lost for r in RECORDS.values()) == 0
    assert sum(r.duplicated for r in RECORDS.values()) == 0
