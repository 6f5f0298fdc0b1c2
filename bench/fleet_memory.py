"""Fleet memory: resident set size of each service's process (with its child processes), idle and under
the load of ``e2e_conversations`` at 32 concurrent users, and the proportional set size (PSS) idle.

The fleet as ``switchboard up`` starts it, on a fresh data directory. Measured: just after every service is
ready; idle after start-up (the demo tenant's knowledge base synced by retrieval, demo/kb ingested into a
tenant without limits through the public API); the peak during a run of 32 simulated users holding
3-message conversations through the gateway (sampled every 0.5 s); idle again after that run. RSS comes
from psutil when installed, /proc/<pid>/status otherwise; the total is the peak of the summed samples.

Usage: python bench/fleet_memory.py [--users 32] [--seconds 20] [--settle 3]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _fleet import (  # noqa: E402
    MB,
    RSS_SOURCE,
    BenchFleet,
    LoadResult,
    MemorySampler,
    idle_rss,
    ingest_demo_kb,
    load_summary,
    run_load,
    tree_pss,
    unlimited_tenant,
)
from common import write_result  # noqa: E402

from switchboard_shared.registry import SERVICE_NAMES  # noqa: E402


async def under_load(
    gateway: str, key: str, pids: dict[str, int], *, users: int, seconds: float
) -> tuple[LoadResult, MemorySampler]:
    sampler = MemorySampler(pids)
    sampler.start()
    try:
        result = await run_load(gateway, key, users=users, seconds=seconds, tag="m")
    finally:
        await sampler.stop()
    return result, sampler


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the load run")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds of idle sampling (median)")
    args = parser.parse_args()

    with BenchFleet() as fleet:
        fleet.start()
        ready = fleet.wait_ready()
        pids = fleet.pids()
        print(f"fleet ready in {max(ready.values()):.1f} s; pids {pids}", flush=True)
        just_ready = idle_rss(pids, args.settle)
        key = unlimited_tenant(fleet.gateway)
        ingest_demo_kb(fleet.gateway, key)
        idle = idle_rss(pids, args.settle)
        idle_pss = tree_pss(pids)
        result, sampler = asyncio.run(
            under_load(fleet.gateway, key, pids, users=args.users, seconds=args.seconds)
        )
        after = idle_rss(pids, args.settle)
        exited = fleet.fleet.exited()
        assert not exited, f"processes exited during the run: {exited}\n{fleet.logs_tail(*exited)}"

    load = load_summary(result)
    peak = sampler.peak()
    services = [name for name in SERVICE_NAMES if name in pids]
    others = [name for name in pids if name not in SERVICE_NAMES]
    loaded = f"peak, {args.users} users MB"

    def row(name: str, values: tuple[float, float, float, float, float]) -> dict[str, Any]:
        return {
            "process": name,
            "just ready MB": round(values[0] / MB),
            "idle MB": round(values[1] / MB),
            "idle PSS MB": round(values[2] / MB),
            loaded: round(values[3] / MB),
            "after load MB": round(values[4] / MB),
        }

    def own(name: str) -> tuple[float, float, float, float, float]:
        return just_ready[name], idle[name], idle_pss[name], peak[name], after[name]

    rows = [row(name, own(name)) for name in services]
    rows.append(
        row(
            "total (5 services)",
            (
                sum(just_ready[n] for n in services),
                sum(idle[n] for n in services),
                sum(idle_pss[n] for n in services),
                sampler.peak_total(services),
                sum(after[n] for n in services),
            ),
        )
    )
    rows += [row(name, own(name)) for name in others]
    for line in rows:
        print(line)
    print(
        f"load: {load['conv/s']:.2f} conv/s, {load['msg/s']:.2f} msg/s, p50 {load['p50 ms']:.0f} ms, "
        f"errors {dict(result.errors) or 0}",
        flush=True,
    )
    notes = (
        f"RSS of each process with its children ({RSS_SOURCE}); "
        f"shared pages count in every process; idle PSS counts a page shared by n processes 1/n in each, so its "
        f"total is what the fleet takes. Fleet as `switchboard up` starts it (embedded defaults, "
        f"extractive provider, demo CRM). Idle = median of {args.settle:g} s of samples; peak = largest "
        f"0.5 s sample during {args.seconds:g} s of {args.users} users holding 3-message conversations "
        f"through the gateway ({load['msg/s']:.1f} msg/s, p50 {load['p50 ms']:.0f} ms, "
        f"{result.error_count} errors). Shared 2-core machine (other jobs running)."
    )
    write_result(
        "fleet_memory",
        rows,
        notes=notes,
        extra={
            "pids": pids,
            "ready_s": ready,
            "load": load,
            "samples_mb": [{name: round(v / MB, 1) for name, v in s.items()} for s in sampler.samples],
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
