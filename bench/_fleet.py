"""What the fleet-level scenarios share: the whole fleet started as ``switchboard up`` starts it, a tenant
without limits holding the demo knowledge base, simulated users talking through the public gateway, and
the memory of each service's process tree.

Not a scenario itself (the leading underscore keeps ``bench/run.py`` from running it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiohttp import ClientError, ClientSession, ClientTimeout, TCPConnector
from common import percentile

from switchboard_cli.commands.ingest import ingest_command
from switchboard_cli.fleet import Fleet, demo_crm_specs, fleet_specs, probe
from switchboard_shared.registry import DEMO_CRM_OFFSET, SERVICES

try:
    import psutil
except ImportError:  # /proc is read instead
    psutil = None
RSS_SOURCE = "psutil" if psutil is not None else "/proc VmRSS"
CPU_SOURCE = "psutil" if psutil is not None else "/proc/<pid>/stat"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

ROOT = Path(__file__).resolve().parent.parent
DEMO_KB_DIR = ROOT / "demo" / "kb"
HOST = "127.0.0.1"
BENCH_TENANT = "bench"
MB = 1024 * 1024
# Short multi-turn conversations over the demo help centre (questions from eval/demo.jsonl), follow-ups
# included; every one is answerable, so the extractive provider answers instead of handing off.
CONVERSATIONS: tuple[tuple[str, ...], ...] = (
    (
        "How fast is courier delivery in Moscow?",
        "And for other cities?",
        "How much does courier delivery cost?",
    ),
    (
        "How many days do I have to send something back?",
        "Can I return opened cosmetics?",
        "When will my refund arrive on my card?",
    ),
    (
        "Can I pay in instalments?",
        "My card payment was declined, was I charged?",
        "What is Pelican Plus and how much does it cost?",
    ),
    (
        "Сколько стоит доставка курьером?",
        "Сколько дней хранится посылка в пункте выдачи?",
        "Как вернуть товар?",
    ),
    ("How long is the warranty on a laptop?", "I forgot my password, what now?", "Do you sell gift cards?"),
)


def free_base_port() -> int:
    """A first port from which the fleet's consecutive ports and the demo CRM's (base + 10) are free."""
    offsets = [*range(len(SERVICES)), DEMO_CRM_OFFSET]
    for _ in range(200):
        with socket.socket() as probe_socket:
            probe_socket.bind((HOST, 0))
            base: int = probe_socket.getsockname()[1]
        if base + DEMO_CRM_OFFSET > 65535:
            continue
        if all(_port_free(base + offset) for offset in offsets):
            return base
    raise RuntimeError("no free range of ports for the fleet")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


class BenchFleet:
    """The fleet of ``switchboard up`` (every service and the demo CRM, embedded defaults, the demo
    knowledge base synced by retrieval at start-up) on free ports and a fresh data directory."""

    def __init__(self, data_dir: Path | None = None) -> None:
        self.owns_data_dir = data_dir is None
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="sb-bench-fleet-"))
        base = free_base_port()
        # `switchboard up` run from the repository finds demo/kb in its working directory; say it outright.
        self.fleet = Fleet(
            fleet_specs(HOST, base) + demo_crm_specs(HOST, base),
            self.data_dir,
            extra_env={"RETRIEVAL_DEMO_KB_DIR": str(DEMO_KB_DIR)},
        )
        self.launched_at = 0.0

    def url(self, name: str) -> str:
        return next(spec.url for spec in self.fleet.specs if spec.name == name)

    @property
    def gateway(self) -> str:
        return self.url("gateway")

    def pids(self) -> dict[str, int]:
        return {name: process.pid for name, process in self.fleet.processes.items()}

    def start(self) -> None:
        self.launched_at = time.monotonic()
        self.fleet.start()

    def wait_ready(self, timeout: float = 180.0) -> dict[str, float]:
        """Seconds from launch until each process first answered its readiness probe with 200."""
        deadline = time.monotonic() + timeout
        ready: dict[str, float] = {}
        with httpx.Client(timeout=1.0) as client:
            while len(ready) < len(self.fleet.specs) and time.monotonic() < deadline:
                exited = self.fleet.exited()
                if exited:
                    raise RuntimeError(f"fleet processes exited: {exited}\n{self.logs_tail(*exited)}")
                for spec in self.fleet.specs:
                    if spec.name not in ready and probe(client, spec.url, spec.ready_path):
                        ready[spec.name] = time.monotonic() - self.launched_at
                time.sleep(0.05)
        missing = [spec.name for spec in self.fleet.specs if spec.name not in ready]
        if missing:
            raise TimeoutError(f"not ready after {timeout}s: {missing}\n{self.logs_tail(*missing)}")
        return ready

    def logs_tail(self, *names: str, chars: int = 2000) -> str:
        parts = []
        for name in names:
            log = self.data_dir / "logs" / f"{name}.log"
            text = log.read_text(errors="replace")[-chars:] if log.exists() else "(no log)"
            parts.append(f"--- {name}:\n{text}")
        return "\n".join(parts)

    def stop(self) -> None:
        self.fleet.stop()
        if self.owns_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> BenchFleet:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def admin_token() -> str:
    """The operator token the gateway runs with: its embedded default unless the environment sets one."""
    from switchboard_cli.operator import admin_token as operator_token

    return operator_token()


def unlimited_tenant(gateway: str, tenant: str = BENCH_TENANT) -> str:
    """Create a tenant without budgets or per-user limits and a server key without a rate limit; return
    the key. (0 disables a per-minute limit, -1 makes a daily budget unlimited.)"""
    headers = {"Authorization": f"Bearer {admin_token()}"}
    with httpx.Client(base_url=gateway, headers=headers, timeout=30) as client:
        client.post(
            "/v1/admin/tenants",
            json={
                "id": tenant,
                "name": "Benchmark",
                "daily_message_budget": -1,
                "daily_token_budget": -1,
                "end_user_requests_per_minute": 0,
            },
        ).raise_for_status()
        created = client.post(
            f"/v1/admin/tenants/{tenant}/keys",
            json={"scope": "server", "name": "bench", "requests_per_minute": 0},
        )
        created.raise_for_status()
        key: str = created.json()["key"]
        return key


def ingest_demo_kb(gateway: str, key: str) -> None:
    """``switchboard ingest demo/kb --kb demo`` through the public API; returns once the sync succeeded."""
    ingest_command(str(DEMO_KB_DIR), kb="demo", gateway=gateway, key=key, poll=0.25)


@dataclass
class LoadResult:
    users: int
    elapsed_s: float = 0.0
    conversations: int = 0
    messages: int = 0
    message_ms: list[float] = field(default_factory=list)
    create_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    handoffs: int = 0
    providers: Counter[str] = field(default_factory=Counter)
    grounded: int = 0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


async def _conversation(
    session: ClientSession, gateway: str, result: LoadResult, user: str, script: tuple[str, ...]
) -> None:
    headers = {"X-End-User-ID": user}
    started = time.perf_counter()
    async with session.post(
        f"{gateway}/v1/conversations", json={"end_user_id": user, "channel": "api"}, headers=headers
    ) as response:
        if response.status not in (200, 201):
            await response.read()
            result.errors[f"create {response.status}"] += 1
            return
        body = await response.json(content_type=None)
    result.create_ms.append((time.perf_counter() - started) * 1000)
    messages = f"{gateway}/v1/conversations/{body['id']}/messages"
    for text in script:
        started = time.perf_counter()
        async with session.post(messages, json={"text": text}, headers=headers) as response:
            if response.status != 200:
                await response.read()
                result.errors[str(response.status)] += 1
                return
            turn = await response.json(content_type=None)
        result.message_ms.append((time.perf_counter() - started) * 1000)
        result.messages += 1
        reply = turn.get("reply")
        if reply is None:
            result.handoffs += 1
        else:
            result.providers[str(reply.get("provider"))] += 1
            result.grounded += bool(turn.get("sources"))
    result.conversations += 1


async def run_load(
    gateway: str,
    key: str,
    *,
    users: int,
    seconds: float,
    drain_seconds: float = 120.0,
    request_timeout: float = 60.0,
    tag: str = "u",
) -> LoadResult:
    """``users`` simulated users, each holding conversations one after another (open one, ask its few
    questions, open the next) until ``seconds`` have passed; conversations under way then finish, for at
    most ``drain_seconds`` more. A failed step ends that conversation and is counted by status."""
    result = LoadResult(users=users)
    deadline = time.monotonic() + seconds

    async def user(index: int, session: ClientSession) -> None:
        number = 0
        while time.monotonic() < deadline:
            script = CONVERSATIONS[(index + number) % len(CONVERSATIONS)]
            try:
                await _conversation(session, gateway, result, f"bench-{tag}{index}-{number}", script)
            except (TimeoutError, ClientError, ValueError) as exc:
                result.errors[type(exc).__name__] += 1
            number += 1

    connector = TCPConnector(limit=users, limit_per_host=users)
    async with ClientSession(
        connector=connector,
        headers={"Authorization": f"Bearer {key}"},
        timeout=ClientTimeout(total=request_timeout),
    ) as session:
        started = time.monotonic()
        tasks = [asyncio.create_task(user(i, session)) for i in range(users)]
        done, pending = await asyncio.wait(tasks, timeout=seconds + drain_seconds)
        for task in pending:
            task.cancel()
            result.errors["cancelled at the time bound"] += 1
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            if task.exception() is not None:
                result.errors[type(task.exception()).__name__] += 1
        result.elapsed_s = time.monotonic() - started
    return result


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: the fields after the last ')' are fixed.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def _vm_rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _proc_cpu(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    # The fields after the command name (which may hold spaces and parentheses): utime, stime are 12th, 13th.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _psutil_cpu(proc: Any) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def _tree_totals(pids: dict[str, int], of_psutil: Any, of_proc: Any) -> dict[str, Any]:
    """``of_psutil(process)`` (psutil installed) or ``of_proc(pid)`` (/proc) summed over each named
    process and all its live descendants."""
    totals: dict[str, Any] = {}
    if psutil is not None:
        for name, pid in pids.items():
            total = 0
            try:
                root = psutil.Process(pid)
                for proc in [root, *root.children(recursive=True)]:
                    with contextlib.suppress(psutil.NoSuchProcess):
                        total += of_psutil(proc)
            except psutil.NoSuchProcess:
                pass
            totals[name] = total
        return totals
    children = _children_map()
    for name, pid in pids.items():
        total, stack = 0, [pid]
        while stack:
            current = stack.pop()
            total += of_proc(current)
            stack.extend(children.get(current, []))
        totals[name] = total
    return totals


def tree_rss(pids: dict[str, int]) -> dict[str, int]:
    """Resident set size in bytes of each named process together with all its descendants (psutil when
    installed, /proc otherwise). Shared pages count once per process, as ``ps`` shows them."""
    return _tree_totals(pids, lambda proc: proc.memory_info().rss, _vm_rss)


def tree_pss(pids: dict[str, int]) -> dict[str, int]:
    """Proportional set size in bytes of each named process with its descendants: a page shared by n
    processes counts 1/n in each, so the fleet's total is the memory it takes, libraries loaded by every
    service counted once (psutil when installed, /proc/<pid>/smaps_rollup otherwise)."""
    return _tree_totals(pids, lambda proc: proc.memory_full_info().pss, _smaps_pss)


def _smaps_pss(pid: int) -> int:
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    for line in rollup.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return 0


def tree_cpu(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds (user + system) of each named process together with its live descendants, from the
    processes' own counters (psutil when installed, /proc/<pid>/stat otherwise)."""
    return _tree_totals(pids, _psutil_cpu, _proc_cpu)


class MemorySampler:
    """Samples ``tree_rss`` every ``interval`` seconds in a thread while a load runs; keeps the samples."""

    def __init__(self, pids: dict[str, int], interval: float = 0.5) -> None:
        self.pids = pids
        self.interval = interval
        self.samples: list[dict[str, int]] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(await asyncio.to_thread(tree_rss, self.pids))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    def peak(self) -> dict[str, int]:
        return {name: max(sample[name] for sample in self.samples) for name in self.pids}

    def peak_total(self, names: list[str]) -> int:
        return max(sum(sample[name] for name in names) for sample in self.samples)


def idle_rss(pids: dict[str, int], seconds: float = 3.0, interval: float = 0.5) -> dict[str, int]:
    """The median of a few samples over ``seconds`` of no load."""
    samples = []
    end = time.monotonic() + seconds
    while True:
        samples.append(tree_rss(pids))
        if time.monotonic() >= end:
            break
        time.sleep(interval)
    return {name: sorted(s[name] for s in samples)[len(samples) // 2] for name in pids}


def load_summary(result: LoadResult) -> dict[str, Any]:
    """A row's numbers for one load run (latencies in ms)."""
    return {
        "conversations": result.conversations,
        "messages": result.messages,
        "conv/s": result.conversations / result.elapsed_s if result.elapsed_s else 0.0,
        "msg/s": result.messages / result.elapsed_s if result.elapsed_s else 0.0,
        "p50 ms": percentile(result.message_ms, 50),
        "p95 ms": percentile(result.message_ms, 95),
        "p99 ms": percentile(result.message_ms, 99),
        "errors": result.error_count,
        "429s": sum(count for kind, count in result.errors.items() if "429" in kind),
    }
