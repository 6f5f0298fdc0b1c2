"""The foundation question: which pooled async HTTP client should the fleet's proxy-style calls use?

A shared ``httpx.AsyncClient`` against a shared ``aiohttp.ClientSession``, 32 concurrent workers doing
round trips (GET, read the small JSON body) to the same minimal upstream (``gateway_proxy.py``'s), in
alternating rounds. Reports requests/s, p50/p99 latency and the client's CPU per request (process CPU
time / requests: the figure that survives a shared, loaded machine best).

Usage: python bench/http_clients.py [--rounds 3] [--seconds 6] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import percentile, write_result  # noqa: E402
from gateway_proxy import BODY, UPSTREAM_PATH, pinned, start, stop  # noqa: E402

from switchboard_shared.testing.servers import free_port, wait_for_port  # noqa: E402

Fetch = Callable[[], Awaitable[bytes]]


async def measure(fetch: Fetch, seconds: float, concurrency: int) -> dict[str, float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            body = await fetch()
            latencies.append(time.perf_counter() - started)
            assert body == BODY

    cpu_before = time.process_time()
    wall_before = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - wall_before
    cpu = time.process_time() - cpu_before
    return {
        "rps": len(latencies) / wall,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "cpu_us": cpu / len(latencies) * 1e6,
    }


async def run(url: str, rounds: int, seconds: float, concurrency: int) -> dict[str, list[dict[str, float]]]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    timeout = httpx.Timeout(10.0)
    async with (
        httpx.AsyncClient(limits=limits, timeout=timeout) as hx,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as ah,
    ):

        async def via_httpx() -> bytes:
            response = await hx.get(url)
            return response.content

        async def via_aiohttp() -> bytes:
            async with ah.get(url) as response:
                return await response.read()

        clients: dict[str, Fetch] = {"httpx.AsyncClient": via_httpx, "aiohttp.ClientSession": via_aiohttp}
        for fetch in clients.values():
            await measure(fetch, 1.0, concurrency)  # warm-up: pools filled
        samples: dict[str, list[dict[str, float]]] = {name: [] for name in clients}
        for round_number in range(rounds):
            for name, fetch in clients.items():
                result = await measure(fetch, seconds, concurrency)
                samples[name].append(result)
                print(
                    f"round {round_number + 1} {name:22s} {result['rps']:8.0f} req/s  p50 {result['p50_ms']:.2f} ms"
                    f"  p99 {result['p99_ms']:.2f} ms  client CPU {result['cpu_us']:.0f} us/req",
                    flush=True,
                )
        return samples


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    port = free_port()
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"sb-bench-upstream-{port}.log"
    upstream = start(
        pinned(0, [sys.executable, str(HERE / "gateway_proxy.py"), "--serve-upstream", str(port)]), log
    )
    try:
        wait_for_port(port, timeout=30)
        if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
            os.sched_setaffinity(0, {1})
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
        samples = asyncio.run(
            run(f"http://127.0.0.1:{port}{UPSTREAM_PATH}", args.rounds, args.seconds, args.concurrency)
        )
    finally:
        stop(upstream)
        log.unlink(missing_ok=True)
    medians = {
        name: {
            metric: statistics.median(r[metric] for r in runs)
            for metric in ("rps", "p50_ms", "p99_ms", "cpu_us")
        }
        for name, runs in samples.items()
    }
    rows = [
        {
            "client": name,
            "req/s": round(m["rps"]),
            "p50 ms": round(m["p50_ms"], 2),
            "p99 ms": round(m["p99_ms"], 2),
            "client CPU us/req": round(m["cpu_us"]),
        }
        for name, m in medians.items()
    ]
    hx, ah = medians["httpx.AsyncClient"], medians["aiohttp.ClientSession"]
    ratios = {
        "aiohttp/httpx throughput": ah["rps"] / hx["rps"],
        "httpx/aiohttp CPU per request": hx["cpu_us"] / ah["cpu_us"],
    }
    winner = "aiohttp.ClientSession" if ah["rps"] >= hx["rps"] else "httpx.AsyncClient"
    notes = (
        f"{args.concurrency} concurrent workers, {args.rounds} alternating rounds of {args.seconds:g} s, medians; "
        "client on core 1, upstream on core 0, uvloop; shared 2-core machine (other jobs running). "
        f"Winner: {winner}; " + "; ".join(f"{k}: {v:.2f}" for k, v in ratios.items())
    )
    print(notes)
    write_result("http_clients", rows, notes=notes, extra={"ratios": ratios, "samples": samples})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
