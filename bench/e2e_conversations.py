"""End-to-end conversations per second through the public gateway, the whole fleet as real processes.

The fleet as ``switchboard up`` starts it (gateway, chat, retrieval, integrations, analytics and the demo
CRM on embedded defaults: SQLite, in-process stores, the extractive provider), a tenant without budgets or
rate limits (so 429s cannot distort the numbers) whose knowledge base is demo/kb, ingested through the
public API, and simulated users: each holds short conversations one after another through the gateway
with a server key (open a conversation, ask three questions, a follow-up among them; open the next).

Concurrency levels alternate round by round (1, 8, 32, 128 users by default); for each level: conversations
and messages per second (median over rounds), per-message latency p50/p95/p99 (all rounds pooled) and
errors by status. The load generator (aiohttp) shares the machine with the fleet.

Usage: python bench/e2e_conversations.py [--users 1 8 32 128] [--rounds 2] [--seconds 15] [--warmup 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _fleet import (  # noqa: E402
    CONVERSATIONS,
    BenchFleet,
    LoadResult,
    ingest_demo_kb,
    load_summary,
    run_load,
    unlimited_tenant,
)
from common import percentile, write_result  # noqa: E402


def check_answer(gateway: str, key: str) -> dict[str, Any]:
    """One turn before the load: the answer must come from the extractive provider, grounded in demo/kb."""
    headers = {"Authorization": f"Bearer {key}", "X-End-User-ID": "bench-check"}
    with httpx.Client(base_url=gateway, headers=headers, timeout=60) as client:
        created = client.post("/v1/conversations", json={"end_user_id": "bench-check", "channel": "api"})
        created.raise_for_status()
        turn = client.post(
            f"/v1/conversations/{created.json()['id']}/messages", json={"text": CONVERSATIONS[0][2]}
        )
        turn.raise_for_status()
    body: dict[str, Any] = turn.json()
    reply = body["reply"]
    assert reply is not None and reply["provider"] == "extractive", body
    assert body["sources"], f"the answer cites nothing: is demo/kb ingested? {body}"
    return body


async def measure(gateway: str, key: str, args: argparse.Namespace) -> dict[int, list[LoadResult]]:
    # Warm-up: connection pools filled, the embedding model and caches loaded; discarded.
    await run_load(gateway, key, users=min(8, max(args.users)), seconds=args.warmup, tag="w")
    runs: dict[int, list[LoadResult]] = {users: [] for users in args.users}
    for round_number in range(args.rounds):
        for users in args.users:
            result = await run_load(
                gateway,
                key,
                users=users,
                seconds=args.seconds,
                drain_seconds=args.drain,
                tag=f"r{round_number}c{users}-",
            )
            runs[users].append(result)
            row = load_summary(result)
            print(
                f"round {round_number + 1} {users:4d} users: {row['conv/s']:6.2f} conv/s "
                f"{row['msg/s']:6.2f} msg/s  p50 {row['p50 ms']:7.0f} ms  p95 {row['p95 ms']:7.0f} ms  "
                f"p99 {row['p99 ms']:7.0f} ms  errors {dict(result.errors) or 0}  "
                f"({result.conversations} conversations in {result.elapsed_s:.1f} s)",
                flush=True,
            )
    return runs


def rows_of(runs: dict[int, list[LoadResult]]) -> list[dict[str, Any]]:
    rows = []
    for users, results in runs.items():
        pooled = LoadResult(users=users)
        for result in results:
            pooled.conversations += result.conversations
            pooled.messages += result.messages
            pooled.message_ms += result.message_ms
            pooled.errors.update(result.errors)
        pooled.elapsed_s = sum(result.elapsed_s for result in results)
        summary = load_summary(pooled)
        rows.append(
            {
                "users": users,
                "conversations": summary["conversations"],
                "conv/s": round(statistics.median(load_summary(r)["conv/s"] for r in results), 2),
                "msg/s": round(statistics.median(load_summary(r)["msg/s"] for r in results), 2),
                "p50 ms": round(summary["p50 ms"]),
                "p95 ms": round(summary["p95 ms"]),
                "p99 ms": round(summary["p99 ms"]),
                "errors": summary["errors"],
                "429s": summary["429s"],
            }
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, nargs="+", default=[1, 8, 32, 128])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=15.0, help="per level and round")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument(
        "--drain", type=float, default=90.0, help="most seconds conversations under way may take to end"
    )
    args = parser.parse_args()

    with BenchFleet() as fleet:
        fleet.start()
        ready = fleet.wait_ready()
        print(f"fleet ready in {max(ready.values()):.1f} s: {fleet.gateway}", flush=True)
        key = unlimited_tenant(fleet.gateway)
        ingest_demo_kb(fleet.gateway, key)
        check = check_answer(fleet.gateway, key)
        runs = asyncio.run(measure(fleet.gateway, key, args))
        exited = fleet.fleet.exited()
        assert not exited, f"processes exited during the run: {exited}\n{fleet.logs_tail(*exited)}"

    rows = rows_of(runs)
    errors: Counter[str] = Counter()
    providers: Counter[str] = Counter()
    handoffs = grounded = 0
    for results in runs.values():
        for result in results:
            errors.update(result.errors)
            providers.update(result.providers)
            handoffs += result.handoffs
            grounded += result.grounded
    answered = sum(providers.values())
    notes = (
        f"Whole fleet as `switchboard up` starts it (embedded defaults, extractive provider), demo/kb "
        f"ingested into a tenant without limits; users hold 3-message conversations through the gateway "
        f"with a server key. {args.rounds} alternating rounds of {args.seconds:g} s per level (conversations "
        f"under way finish), conv/s and msg/s medians over rounds, latency over all rounds. "
        f"Load generator (aiohttp) on the same shared 2-core machine (other jobs running). "
        f"Answers: {grounded}/{answered} cited the knowledge base, {handoffs} handoffs; "
        f"errors by kind: {dict(errors) or 'none'}."
    )
    write_result(
        "e2e_conversations",
        rows,
        notes=notes,
        extra={
            "ready_s": ready,
            "providers": dict(providers),
            "errors_by_kind": dict(errors),
            "first_answer": check["reply"]["text"][:300],
            "rounds": {
                str(users): [
                    {
                        **load_summary(result),
                        "elapsed_s": result.elapsed_s,
                        "errors_by_kind": dict(result.errors),
                        "create_conversation_p50_ms": percentile(result.create_ms, 50),
                    }
                    for result in results
                ]
                for users, results in runs.items()
            },
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
