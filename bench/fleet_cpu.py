"""Fleet CPU: CPU milliseconds each service spends per customer message, at 8 and at 1 concurrent users.

The fleet as ``switchboard up`` starts it (every service and the demo CRM, embedded defaults, extractive
provider, demo/kb synced by retrieval at start-up), on free ports and a fresh data directory; demo/kb
ingested into a tenant without limits through the public API, as ``e2e_conversations`` does. A few warm-up
conversations first (models loaded, caches filled); then, for each number of users, a fixed number of
3-message conversations through the gateway with a server key, the users taking the next conversation as
soon as they finish one. Each service's CPU time (user + system, of its process and any children) is read
from the processes' own counters (psutil when installed, /proc/<pid>/stat otherwise) before and after the
run (started once the fleet is idle) and divided by the messages answered: the cost of a message whatever the threads did beside it, which
wall-time latency hides on a busy machine. Also reported: messages/s, p50/p95 message latency and the
load average when the run started.

Usage: python bench/fleet_cpu.py [--conversations 64] [--single-conversations 20] [--users 8] [--variant X]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout, TCPConnector

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _fleet import (  # noqa: E402
    CONVERSATIONS,
    CPU_SOURCE,
    BenchFleet,
    LoadResult,
    _conversation,
    ingest_demo_kb,
    tree_cpu,
    unlimited_tenant,
)
from common import percentile, write_result  # noqa: E402

from switchboard_cli.fleet import SERVICES  # noqa: E402


def thread_counts(pids: dict[str, int]) -> dict[str, int]:
    counts = {}
    for name, pid in pids.items():
        try:
            counts[name] = len(os.listdir(f"/proc/{pid}/task"))
        except OSError:
            counts[name] = 0
    return counts


def wait_idle(pids: dict[str, int], *, below: float = 0.03, timeout: float = 180.0) -> float:
    """Wait until the fleet burns less than ``below`` CPU seconds per second (the start-up sync of the demo
    tenant's knowledge base and the bench tenant's ingestion are over); return the seconds waited."""
    started = time.monotonic()
    last = sum(tree_cpu(pids).values())
    while time.monotonic() - started < timeout:
        time.sleep(1.0)
        now = sum(tree_cpu(pids).values())
        if now - last < below:
            break
        last = now
    return time.monotonic() - started


async def run_fixed(gateway: str, key: str, *, users: int, conversations: int, tag: str) -> LoadResult:
    """``users`` simulated users sharing ``conversations`` 3-message conversations: each takes the next
    one as soon as it has finished its own. A failed step ends that conversation and is counted."""
    result = LoadResult(users=users)
    numbers = iter(range(conversations))

    async def user(session: ClientSession) -> None:
        for number in numbers:
            script = CONVERSATIONS[number % len(CONVERSATIONS)]
            try:
                await _conversation(session, gateway, result, f"cpu-{tag}-{number}", script)
            except (TimeoutError, ClientError, ValueError) as exc:
                result.errors[type(exc).__name__] += 1

    connector = TCPConnector(limit=users, limit_per_host=users)
    async with ClientSession(
        connector=connector, headers={"Authorization": f"Bearer {key}"}, timeout=ClientTimeout(total=60)
    ) as session:
        started = time.monotonic()
        await asyncio.gather(*(user(session) for _ in range(users)))
        result.elapsed_s = time.monotonic() - started
    return result


def measure(
    gateway: str, key: str, pids: dict[str, int], *, users: int, conversations: int
) -> dict[str, Any]:
    load = os.getloadavg()
    before = tree_cpu(pids)
    result = asyncio.run(run_fixed(gateway, key, users=users, conversations=conversations, tag=f"u{users}"))
    after = tree_cpu(pids)
    messages = max(1, result.messages)
    cpu_ms = {name: (after[name] - before[name]) * 1000 / messages for name in pids}
    return {
        "users": users,
        "conversations": result.conversations,
        "messages": result.messages,
        "elapsed_s": result.elapsed_s,
        "msg/s": result.messages / result.elapsed_s if result.elapsed_s else 0.0,
        "p50 ms": percentile(result.message_ms, 50),
        "p95 ms": percentile(result.message_ms, 95),
        "errors": dict(result.errors),
        "handoffs": result.handoffs,
        "grounded": result.grounded,
        "providers": dict(result.providers),
        "cpu_ms_per_message": cpu_ms,
        "loadavg_at_start": load,
        "threads_after": thread_counts(pids),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=8, help="concurrent users of the first run")
    parser.add_argument("--conversations", type=int, default=64, help="conversations at --users users")
    parser.add_argument("--single-conversations", type=int, default=20, help="conversations at 1 user")
    parser.add_argument("--warmup", type=int, default=5, help="conversations before measuring")
    parser.add_argument("--variant", default="", help="suffix of the scenario name (a before/after label)")
    args = parser.parse_args()

    with BenchFleet() as fleet:
        fleet.start()
        ready = fleet.wait_ready()
        pids = fleet.pids()
        print(f"fleet ready in {max(ready.values()):.1f} s; pids {pids}", flush=True)
        key = unlimited_tenant(fleet.gateway)
        ingest_demo_kb(fleet.gateway, key)
        asyncio.run(run_fixed(fleet.gateway, key, users=2, conversations=args.warmup, tag="warm"))
        print(f"fleet idle after {wait_idle(pids):.0f} s more", flush=True)
        runs = []
        for users, conversations in ((args.users, args.conversations), (1, args.single_conversations)):
            run = measure(fleet.gateway, key, pids, users=users, conversations=conversations)
            runs.append(run)
            print(
                f"{users} users: {run['messages']} messages in {run['elapsed_s']:.1f} s "
                f"({run['msg/s']:.1f}/s), p50 {run['p50 ms']:.0f} ms, p95 {run['p95 ms']:.0f} ms, "
                f"errors {run['errors'] or 0}, load {run['loadavg_at_start'][0]:.2f}; CPU ms/msg "
                + ", ".join(f"{n} {v:.1f}" for n, v in run["cpu_ms_per_message"].items()),
                flush=True,
            )
        exited = fleet.fleet.exited()
        assert not exited, f"processes exited during the run: {exited}\n{fleet.logs_tail(*exited)}"

    services = [name for name in SERVICES if name in pids]
    others = [name for name in pids if name not in SERVICES]
    columns = [f"{run['users']} user{'s' if run['users'] > 1 else ''}" for run in runs]

    def row(measure: str, values: list[float], digits: int = 1) -> dict[str, Any]:
        return {"measure": measure, **{c: round(v, digits) for c, v in zip(columns, values, strict=True)}}

    rows = [row(f"{name} CPU ms/message", [r["cpu_ms_per_message"][name] for r in runs]) for name in services]
    rows.append(
        row(
            "total (5 services) CPU ms/message",
            [sum(r["cpu_ms_per_message"][n] for n in services) for r in runs],
        )
    )
    rows += [row(f"{name} CPU ms/message", [r["cpu_ms_per_message"][name] for r in runs]) for name in others]
    rows += [
        row("messages/s", [r["msg/s"] for r in runs]),
        row("p50 ms", [r["p50 ms"] for r in runs]),
        row("p95 ms", [r["p95 ms"] for r in runs]),
        row("load average (1 min) at start", [r["loadavg_at_start"][0] for r in runs], 2),
    ]
    for line in rows:
        print(line)
    failures = {c: r["errors"] for c, r in zip(columns, runs, strict=True) if r["errors"]}
    notes = (
        f"CPU time (user + system) of each service's process with its children, from {CPU_SOURCE}, over "
        f"the run, divided by the messages answered. Fleet as `switchboard up` starts it (embedded defaults, "
        f"extractive provider, demo CRM), demo/kb ingested into a tenant without limits; "
        + ", ".join(
            f"{r['conversations']} 3-message conversations at {c}" for c, r in zip(columns, runs, strict=True)
        )
        + f" through the gateway with a server key, after {args.warmup} warm-up conversations and once the "
        f"fleet was idle (background syncs over). "
        f"Threads per process after the runs: {runs[-1]['threads_after']}. "
        f"Errors: {failures or 'none'}. Shared 2-core machine (other jobs running; see the load average)."
    )
    scenario = "fleet_cpu" + (f"-{args.variant}" if args.variant else "")
    write_result(scenario, rows, notes=notes, extra={"pids": pids, "ready_s": ready, "runs": runs})
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
