"""Cold start: from launching the fleet to every service ready, and to the first answered message.

Each run launches the fleet as ``switchboard up`` does (every service and the demo CRM as its own process,
embedded defaults, a fresh data directory: migrations, the demo knowledge base synced from demo/kb), and
measures from the launch: when each service's /readyz first answers 200, when all do, and when the first
message through the gateway is answered (the demo tenant and its keys made as ``up`` makes them, then a
conversation opened and one question asked with the server key). Reports the median and min–max over runs.

Usage: python bench/cold_start.py [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _fleet import BenchFleet, admin_token  # noqa: E402
from common import write_result  # noqa: E402

from switchboard_cli.demo import bootstrap_demo  # noqa: E402

QUESTION = "How much does courier delivery cost?"


def first_grounded(
    client: httpx.Client, launched_at: float, first: dict[str, Any], *, deadline: float
) -> float | None:
    """Seconds from launch until an answer cites the demo knowledge base (synced by retrieval after it
    is ready): the same question in a new conversation every half second until then."""
    if first["sources"]:
        return time.monotonic() - launched_at
    attempt = 0
    while time.monotonic() < deadline:
        time.sleep(0.5)
        attempt += 1
        user = f"cold-start-{attempt}"  # one end user per try: the demo tenant's per-user limit stays far
        headers = {"X-End-User-ID": user}
        created = client.post(
            "/v1/conversations", json={"end_user_id": user, "channel": "api"}, headers=headers
        )
        created.raise_for_status()
        turn = client.post(
            f"/v1/conversations/{created.json()['id']}/messages", json={"text": QUESTION}, headers=headers
        )
        turn.raise_for_status()
        if turn.json()["sources"]:
            return time.monotonic() - launched_at
    return None


def one_run(ready_timeout: float, grounded_timeout: float) -> dict[str, Any]:
    with BenchFleet() as fleet:
        fleet.start()
        ready = fleet.wait_ready(ready_timeout)
        keys = bootstrap_demo(fleet.gateway, admin_token())
        demo_tenant = time.monotonic() - fleet.launched_at
        headers = {"Authorization": f"Bearer {keys['server_key']}", "X-End-User-ID": "cold-start"}
        with httpx.Client(base_url=fleet.gateway, headers=headers, timeout=120) as client:
            created = client.post("/v1/conversations", json={"end_user_id": "cold-start", "channel": "api"})
            created.raise_for_status()
            asked = time.monotonic()
            turn = client.post(f"/v1/conversations/{created.json()['id']}/messages", json={"text": QUESTION})
            turn.raise_for_status()
            answered = time.monotonic()
            body = turn.json()
            assert body["reply"] is not None, body
            grounded = first_grounded(client, fleet.launched_at, body, deadline=answered + grounded_timeout)
        return {
            "ready_s": ready,
            "all_ready_s": max(ready.values()),
            "demo_tenant_s": demo_tenant,
            "first_answer_s": answered - fleet.launched_at,
            "first_message_ms": (answered - asked) * 1000,
            "first_answer_grounded": bool(body["sources"]),
            "first_grounded_answer_s": grounded,
            "provider": body["reply"]["provider"],
        }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--ready-timeout", type=float, default=180.0)
    parser.add_argument("--grounded-timeout", type=float, default=120.0)
    args = parser.parse_args()

    runs = []
    for number in range(args.runs):
        run = one_run(args.ready_timeout, args.grounded_timeout)
        runs.append(run)
        print(
            f"run {number + 1}: all ready {run['all_ready_s']:.1f} s, first answer {run['first_answer_s']:.1f} s "
            f"(that message {run['first_message_ms']:.0f} ms), first citing the KB {run['first_grounded_answer_s'] or float('nan'):.1f} s; "
            + ", ".join(f"{name} {seconds:.1f}" for name, seconds in run["ready_s"].items()),
            flush=True,
        )

    def row(measure: str, values: list[float]) -> dict[str, Any]:
        return {
            "measure": measure,
            "median s": round(statistics.median(values), 2),
            "min s": round(min(values), 2),
            "max s": round(max(values), 2),
        }

    rows = [
        row("all services ready (/readyz 200)", [r["all_ready_s"] for r in runs]),
        row("first answered message via gateway", [r["first_answer_s"] for r in runs]),
    ]
    grounded = [r["first_grounded_answer_s"] for r in runs if r["first_grounded_answer_s"] is not None]
    if grounded:
        rows.append(row("first answer citing the demo KB", grounded))
    rows += [row(f"{name} ready", [r["ready_s"][name] for r in runs]) for name in runs[0]["ready_s"]]
    first_message = [r["first_message_ms"] for r in runs]
    notes = (
        f"{args.runs} runs, each from launch on a fresh data directory, as `switchboard up` starts the fleet "
        f"(embedded defaults, demo CRM, demo/kb synced at start-up; no operator console). First answer = "
        f"demo tenant and keys made as `up` makes them, a conversation opened and one question answered "
        f"(that message alone: median {statistics.median(first_message):.0f} ms; it cited the demo KB in "
        f"{sum(r['first_answer_grounded'] for r in runs)}/{args.runs} runs; the first answer citing it came "
        f"once retrieval's start-up sync of demo/kb ended, in {len(grounded)}/{args.runs} runs within "
        f"{args.grounded_timeout:g} s). Services start in parallel "
        f"on a shared 2-core machine (other jobs running)."
    )
    write_result("cold_start", rows, notes=notes, extra={"runs": runs})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
