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

With ``--profile DIR``, py-spy samples every service during the run at ``--users`` users (raw collapsed
stacks in DIR, one file per service) and the top frames by own and by total time are printed and kept in the
result (py-spy's sampling costs the services a little CPU, so profile in a run of its own).

Usage: python bench/fleet_cpu.py [--conversations 64] [--single-conversations 20] [--users 8] [--variant X]
       [--profile DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
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


class Profiler:
    """py-spy recording every service of the fleet, raw collapsed stacks per service in ``out``."""

    def __init__(self, out: Path, pids: dict[str, int], rate: int = 250) -> None:
        self.out, self.pids, self.rate = out, pids, rate
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def __enter__(self) -> Profiler:
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        self.out.mkdir(parents=True, exist_ok=True)
        for name, pid in self.pids.items():
            command = [
                py_spy,
                "record",
                "--pid",
                str(pid),
                "--rate",
                str(self.rate),
                "--nonblocking",
                "--gil",
            ]
            command += ["--subprocesses", "--format", "raw", "-o", str(self.out / f"{name}.txt")]
            self.processes[name] = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        time.sleep(1.0)  # py-spy attached
        return self

    def __exit__(self, *_: object) -> None:
        for process in self.processes.values():
            process.send_signal(signal.SIGINT)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()

    def top_frames(self, limit: int = 12) -> dict[str, dict[str, list[tuple[str, float]]]]:
        """Per service, the frames with the most samples on top of the stack (own) and anywhere in it
        (total), as shares of the service's samples."""
        out = {}
        for name in self.pids:
            path = self.out / f"{name}.txt"
            own: Counter[str] = Counter()
            total: Counter[str] = Counter()
            samples = 0
            for line in path.read_text().splitlines() if path.exists() else []:
                stack, _, count_text = line.rpartition(" ")
                if not count_text.isdigit():
                    continue
                count = int(count_text)
                frames = [_frame(f) for f in stack.split(";")[1:]]  # the first is the process or thread
                frames = [f for f in frames if f]
                if not frames:
                    continue
                samples += count
                own[frames[-1]] += count
                for frame in set(frames):
                    total[frame] += count
            share = max(1, samples)
            out[name] = {
                "own": [(f, round(c / share, 3)) for f, c in own.most_common(limit)],
                "total": [(f, round(c / share, 3)) for f, c in total.most_common(limit * 3)],
            }
        return out


def _frame(raw: str) -> str:
    """``function (path/to/module.py:line)`` → ``function (module.py)``; idle frames (waiting in the event
    loop's selector or a thread pool's queue) → ''."""
    function, _, where = raw.partition(" (")
    module = where.rsplit("/", 1)[-1].split(":", 1)[0].rstrip(")")
    if function in {"select", "poll", "wait", "_worker", "epoll"} or module == "selectors.py":
        return ""
    return f"{function} ({module})"


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
    parser.add_argument("--profile", type=Path, help="py-spy every service during the first run, stacks here")
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
        profile: dict[str, Any] = {}
        if args.profile is not None:
            with Profiler(args.profile, pids) as profiler:
                measure(fleet.gateway, key, pids, users=args.users, conversations=args.conversations)
            profile = profiler.top_frames()
            for name, frames in profile.items():
                print(f"{name}: own " + "; ".join(f"{f} {share:.0%}" for f, share in frames["own"]))
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
    write_result(
        scenario,
        rows,
        notes=notes,
        extra={"pids": pids, "ready_s": ready, "runs": runs, "profile": profile},
    )
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
