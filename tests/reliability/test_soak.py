"""A bounded soak: 200 concurrent simulated customers for 60 s through both gateway replicas with the
extractive provider. Zero errors; p50/p95/p99 reported; the resident memory of every service (process and
children) may grow less than 10% between the first and the last 10 s.

Figures go to ``test-output/reliability/soak.json`` (and a table with ``-s``).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import threading
import time
from collections import Counter
from typing import Any

import httpx
import psutil
import pytest

from .fleet import KB_DOCUMENTS, OPERATOR_TOKEN, ReliabilityFleet, ingest_kb, make_tenant, retrying
from .load import QUESTIONS

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

CUSTOMERS = int(os.environ.get("RELIABILITY_SOAK_CUSTOMERS", "200"))
SECONDS = float(os.environ.get("RELIABILITY_SOAK_SECONDS", "60"))
WARM_UP_SECONDS = 10.0
WINDOW_SECONDS = 10.0
THINK_SECONDS = (1.0, 3.0)
MAX_RSS_GROWTH = 0.10


def rss(process: psutil.Process) -> int:
    try:
        return process.memory_info().rss + sum(
            child.memory_info().rss for child in process.children(recursive=True)
        )
    except psutil.Error:
        return 0


class RssSampler:
    def __init__(self, fleet: ReliabilityFleet) -> None:
        self.processes = {
            name: psutil.Process(proc.process.pid)
            for name, proc in fleet.processes.items()
            if proc.process is not None
        }
        self.samples: list[tuple[float, dict[str, int]]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            self.samples.append((time.monotonic(), {n: rss(p) for n, p in self.processes.items()}))
            self.stop.wait(1.0)

    def window(self, start: float, end: float) -> dict[str, float]:
        chosen = [sample for at, sample in self.samples if start <= at <= end]
        return {name: statistics.mean(s[name] for s in chosen) for name in self.processes} if chosen else {}


async def post_once(
    client: httpx.AsyncClient, url: str, body: dict[str, Any], headers: dict[str, str]
) -> httpx.Response:
    """POST; a message carries a client_message_id, so one resend after a dropped connection is safe."""
    try:
        return await client.post(url, json=body, headers=headers)
    except httpx.TransportError:
        RETRIES.append(url)
        return await client.post(url, json=body, headers=headers)


RETRIES: list[str] = []
FAILED: list[str] = []  # status, route and error body of each failed request, for the report


async def customer(
    gateway: str, client: httpx.AsyncClient, key: str, number: int, until: float, results: list[Any]
) -> None:
    rng = random.Random(number)
    user = f"soak-{number}"
    headers = {"Authorization": f"Bearer {key}", "X-End-User-ID": user}
    await asyncio.sleep(rng.uniform(0, THINK_SECONDS[1]))
    conversation = None
    while time.monotonic() < until:
        started = time.monotonic()
        try:
            if conversation is None:
                response = await client.post(
                    f"{gateway}/v1/conversations", json={"end_user_id": user}, headers=headers
                )
                if response.status_code in (200, 201):
                    conversation = response.json()["id"]
            else:
                response = await post_once(
                    client,
                    f"{gateway}/v1/conversations/{conversation}/messages",
                    {"text": rng.choice(QUESTIONS), "client_message_id": f"soak-{number}-{started}"},
                    headers,
                )
            results.append((started, time.monotonic() - started, response.status_code))
            if response.status_code not in (200, 201):
                FAILED.append(f"{response.status_code} {response.request.url.path}: {response.text[:300]}")
        except httpx.HTTPError as exc:
            results.append((started, time.monotonic() - started, type(exc).__name__))
        await asyncio.sleep(rng.uniform(*THINK_SECONDS))


async def soak(gateways: list[str], key: str, until: float) -> list[Any]:
    results: list[Any] = []
    # Idle connections are dropped before the server's 5 s keep-alive ends, or a request sent on a
    # connection the server is closing fails (the classic keep-alive race, a client-side matter).
    limits = httpx.Limits(
        max_connections=CUSTOMERS + 10, max_keepalive_connections=CUSTOMERS, keepalive_expiry=2.0
    )
    async with httpx.AsyncClient(timeout=30.0, limits=limits) as client:
        await asyncio.gather(
            *(customer(gateways[n % len(gateways)], client, key, n, until, results) for n in range(CUSTOMERS))
        )
    return results


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def test_soak(fleet: ReliabilityFleet, output_dir: str) -> None:
    keys = make_tenant(fleet.gateway, "soak")
    operator = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    patched = httpx.patch(
        f"{fleet.gateway}/v1/admin/tenants/soak",
        json={"daily_message_budget": -1, "daily_token_budget": -1, "end_user_requests_per_minute": 0},
        headers=operator,
    )
    assert patched.status_code == 200, patched.text
    key = httpx.post(
        f"{fleet.gateway}/v1/admin/tenants/soak/keys",
        json={"scope": "server", "name": "soak", "requests_per_minute": 1_000_000},
        headers=operator,
    ).json()["key"]
    ingest_kb(fleet.gateway, keys["server_key"], KB_DOCUMENTS, "soak help centre")
    with httpx.Client(
        base_url=fleet.gateway, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as client:
        current = retrying(client, "GET", "/v1/assistant").json()
        updated = client.put("/v1/assistant", json={**current, "providers": ["extractive"]})
        assert updated.status_code == 200, updated.text

    sampler = RssSampler(fleet)
    sampler.thread.start()
    started = time.monotonic()
    measured_from = started + WARM_UP_SECONDS
    until = measured_from + SECONDS
    try:
        results = asyncio.run(soak([fleet.gateway, fleet.gateway_b], key, until))
    finally:
        sampler.stop.set()
        sampler.thread.join(timeout=5)
    measured = [r for r in results if r[0] >= measured_from]
    latencies = [elapsed for _, elapsed, status in measured if status == 200]
    errors = Counter(str(status) for _, _, status in measured if status not in (200, 201))
    first = sampler.window(measured_from, measured_from + WINDOW_SECONDS)
    last = sampler.window(until - WINDOW_SECONDS, until)
    growth = {name: (last[name] - first[name]) / first[name] for name in first if first[name]}
    figures = {
        "customers": CUSTOMERS,
        "seconds": SECONDS,
        "requests": len(measured),
        "throughput_per_s": round(len(measured) / SECONDS, 1),
        "errors": dict(errors),
        "error_bodies": FAILED[:10],
        "resent_after_dropped_connection": len(RETRIES),
        "latency_s": {
            "p50": round(percentile(latencies, 0.50), 3),
            "p95": round(percentile(latencies, 0.95), 3),
            "p99": round(percentile(latencies, 0.99), 3),
            "max": round(max(latencies, default=0.0), 3),
        },
        "rss_mb_first_10s": {n: round(v / 2**20, 1) for n, v in first.items()},
        "rss_mb_last_10s": {n: round(v / 2**20, 1) for n, v in last.items()},
        "rss_growth_percent": {n: round(100 * g, 2) for n, g in growth.items()},
        "note": "2-core machine shared with other work while measured",
    }
    with open(os.path.join(output_dir, "soak.json"), "w") as handle:
        json.dump(figures, handle, indent=2)
    print("\n" + json.dumps(figures, indent=1))
    assert len(measured) > CUSTOMERS, figures
    assert not errors, figures
    over = {n: g for n, g in growth.items() if g >= MAX_RSS_GROWTH}
    assert not over, figures
