"""Report latency over 1M stored events, on SQLite and PostgreSQL (target: p95 ≤ 200 ms).

Events are generated as realistic conversations (start, customer messages, answers with latency,
providers, sources, some no-answer turns, feedback, CSAT, handoffs, re-contacts) spread over 90 days,
and loaded through the service's own ingest path (``events.service.ingest``) in batches of 1000, so the
rollups and conversation facts are the ones production maintains incrementally. Then each report is
called through the ASGI app (HTTP handling included, no network) and timed.

    .venv/bin/python bench/analytics_reports.py --events 1000000 --backend sqlite --backend postgres
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result

from switchboard_analytics.events.service import IngestLimits, ingest
from switchboard_analytics.main import create_app
from switchboard_analytics.settings import AnalyticsSettings
from switchboard_shared.testing.servers import postgres_server

TENANT = "bench-tenant"
DAYS = 90
QUESTIONS = [
    f"how do i {verb} my {thing}"
    for verb in ("reset", "change", "delete", "export", "verify", "share")
    for thing in ("password", "domain", "project", "build", "webhook", "team", "invoice", "plan")
]
QUESTIONS += [
    f"как {verb} {thing}"
    for verb in ("сбросить", "изменить", "удалить")
    for thing in ("пароль", "домен", "проект", "сборку")
]
PROVIDERS = ["openai", "anthropic", "extractive"]
LOAD_BATCH = 5000
REASONS = ["customer_request", "repeated_failure", "frustration", "rule"]


def conversations(total_events: int, end: datetime, seed: int = 7) -> Iterator[list[dict[str, Any]]]:
    """Yield conversations (lists of raw events) until about ``total_events`` events were made."""
    rng = random.Random(seed)
    made = 0
    users = [f"user-{i}" for i in range(max(100, total_events // 25))]
    start = end - timedelta(days=DAYS)
    while made < total_events:
        at = start + timedelta(seconds=rng.uniform(0, DAYS * 86400 - 7200))
        cid = uuid.uuid4().hex
        user = rng.choice(users)
        channel = rng.choice(("web", "telegram", "whatsapp"))
        tenant = TENANT if rng.random() < 0.9 else "other-tenant"
        events: list[dict[str, Any]] = []
        base = {
            "tenant_id": tenant,
            "source": "chat",
            "conversation_id": cid,
            "end_user_id": user,
            "channel": channel,
        }

        def add(
            type_: str,
            moment: datetime,
            properties: dict[str, Any] | None = None,
            *,
            into: list[Any] = events,
            shared: dict[str, Any] = base,
        ) -> None:
            into.append(
                {
                    **shared,
                    "id": uuid.uuid4().hex,
                    "type": type_,
                    "occurred_at": moment.isoformat(),
                    "properties": properties or {},
                }
            )

        add("conversation_started", at)
        turns = rng.randint(1, 4)
        for turn in range(turns):
            moment = at + timedelta(seconds=30 * turn + 5)
            add("message_received", moment)
            no_answer = rng.random() < 0.12
            retrieval = rng.lognormvariate(3.5, 0.4)
            generation = rng.lognormvariate(6.5, 0.5)
            provider = rng.choices(PROVIDERS, weights=(6, 2, 2))[0]
            if rng.random() < 0.03:
                add(
                    "provider_fallback",
                    moment,
                    {"from_provider": provider, "to_provider": "extractive", "error": "timeout"},
                )
                provider = "extractive"
            add(
                "answer_sent",
                moment + timedelta(seconds=2),
                {
                    "message_id": uuid.uuid4().hex,
                    "latency_ms": {
                        "retrieval": retrieval,
                        "generation": generation,
                        "total": retrieval + generation + 15,
                    },
                    "provider": provider,
                    "no_answer": no_answer,
                    "question": rng.choice(QUESTIONS) + rng.choice(("", "?", " please", "!!")),
                    "sources": []
                    if no_answer
                    else [f"doc-{rng.randint(1, 400)}" for _ in range(rng.randint(1, 3))],
                },
            )
        last = at + timedelta(seconds=30 * turns + 10)
        if rng.random() < 0.25:
            add(
                "feedback",
                last,
                {"rating": "down" if rng.random() < 0.3 else "up", "sources": [f"doc-{rng.randint(1, 400)}"]},
            )
        if rng.random() < 0.12:
            add("handoff", last, {"reason": rng.choice(REASONS)})
            add("operator_replied", last + timedelta(minutes=3))
        if rng.random() < 0.15:
            add(
                "csat",
                last + timedelta(minutes=5),
                {"score": rng.choices((1, 2, 3, 4, 5), weights=(1, 1, 2, 4, 6))[0]},
            )
        made += len(events)
        yield events


async def load(app_state: dict[str, Any], total_events: int, end: datetime) -> float:
    platform = app_state["platform"]
    limits = IngestLimits(max_age=timedelta(days=DAYS + 30))
    batch: list[dict[str, Any]] = []
    started = time.perf_counter()
    loaded = 0

    async def flush() -> None:
        nonlocal loaded
        async with platform.sessionmaker() as session, session.begin():
            result = await ingest(session=session, raw_events=batch, limits=limits, now=end)
        assert not result.rejected, result.rejected[:2]
        loaded += result.accepted
        batch.clear()

    for conversation in conversations(total_events, end):
        batch.extend(conversation)
        if len(batch) >= LOAD_BATCH:
            await flush()
            if loaded % 100_000 < LOAD_BATCH:
                print(
                    f"  loaded {loaded:>9,} events  {loaded / (time.perf_counter() - started):,.0f}/s",
                    flush=True,
                )
    if batch:
        await flush()
    return time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def measure(client: httpx.AsyncClient, end: date, runs: int) -> dict[str, tuple[float, float]]:
    month = (end - timedelta(days=29)).isoformat()
    quarter = (end - timedelta(days=DAYS - 1)).isoformat()
    week = (end - timedelta(days=6)).isoformat()
    cases = {
        "overview 90d Europe/Berlin": ("overview", quarter, "Europe/Berlin"),
        "overview 30d UTC": ("overview", month, "UTC"),
        "volume 7d America/New_York": ("volume", week, "America/New_York"),
        "resolution 90d Asia/Tokyo": ("resolution", quarter, "Asia/Tokyo"),
        "unanswered 90d UTC": ("unanswered", quarter, "UTC"),
        "documents 90d UTC": ("documents", quarter, "UTC"),
        "latency 30d Asia/Kolkata": ("latency", month, "Asia/Kolkata"),
    }
    results = {}
    for label, (name, start, tz) in cases.items():
        timings = []
        for run in range(runs + 1):
            began = time.perf_counter()
            response = await client.get(
                f"/internal/v1/analytics/{name}",
                params={"start": start, "end": end.isoformat(), "tz": tz},
                headers={"X-Tenant-ID": TENANT},
            )
            elapsed = (time.perf_counter() - began) * 1000
            assert response.status_code == 200, response.text[:300]
            if run:  # the first call warms caches
                timings.append(elapsed)
        results[label] = (statistics.median(timings), percentile(timings, 0.95))
    return results


async def settle(state: dict[str, Any]) -> None:
    """What autovacuum does on a live PostgreSQL after a bulk load (statistics, visibility map), done now."""
    from sqlalchemy import text

    engine = state["platform"].engine
    if engine.dialect.name != "postgresql":
        return
    async with engine.connect() as conn:
        autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
        for table in ("analytics_events", "analytics_rollups", "analytics_conversations"):
            await autocommit.execute(text(f"VACUUM (ANALYZE) {table}"))


async def stored_events(state: dict[str, Any]) -> int:
    from sqlalchemy import func, select

    from switchboard_analytics.events.models import StoredEventRow

    async with state["platform"].sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(StoredEventRow)) or 0)


async def bench(
    database_url: str, total_events: int, runs: int
) -> tuple[float, dict[str, tuple[float, float]]]:
    settings = AnalyticsSettings(
        database_url=database_url,
        environment="test",
        internal_token="bench",
        pseudonym_salt="bench-salt",
        log_level="WARNING",
    )
    app = create_app(settings)
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    async with app.router.lifespan_context(app) as state:
        existing = await stored_events(state)
        if existing:  # a kept SQLite file: measure again without reloading
            print(f"  reusing {existing:,} stored events", flush=True)
            load_seconds = float("nan")
        else:
            load_seconds = await load(state, total_events, end)
            await settle(state)

        async def with_state(scope: dict[str, Any], receive: Any, send: Any) -> None:
            scope["state"] = dict(state)
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=with_state)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", headers={"X-Internal-Token": "bench"}
        ) as client:
            results = await measure(client, end.date(), runs)
    return load_seconds, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--backend", action="append", choices=("sqlite", "postgres"))
    parser.add_argument("--sqlite-path", help="Keep (or reuse) the SQLite database at this path")
    args = parser.parse_args()
    backends = args.backend or ["sqlite", "postgres"]
    report: dict[str, tuple[float, dict[str, tuple[float, float]]]] = {}
    with tempfile.TemporaryDirectory(prefix="sb-bench-") as tmp:
        for backend in backends:
            print(f"{backend}: loading {args.events:,} events through the ingest path", flush=True)
            if backend == "sqlite":
                url = f"sqlite+aiosqlite:///{args.sqlite_path or Path(tmp) / 'analytics.db'}"
                report[backend] = asyncio.run(bench(url, args.events, args.runs))
            else:
                with postgres_server() as server_url:
                    url = server_url.replace("postgresql://", "postgresql+asyncpg://", 1)
                    report[backend] = asyncio.run(bench(url, args.events, args.runs))
    print()
    print(f"{args.events:,} events, {args.runs} timed runs per report (ms; shared 2-core machine)")
    header = f"{'report':<30}" + "".join(f"{b + ' p50':>14}{b + ' p95':>14}" for b in backends)
    print(header)
    labels = next(iter(report.values()))[1].keys()
    for label in labels:
        row = f"{label:<30}"
        for backend in backends:
            p50, p95 = report[backend][1][label]
            row += f"{p50:>14.1f}{p95:>14.1f}"
        print(row)
    for backend in backends:
        seconds = report[backend][0]
        print(f"{backend}: ingest {args.events / seconds:,.0f} events/s ({seconds:.0f} s)")
    worst = max(p95 for _, results in report.values() for _, p95 in results.values())
    print(f"worst p95: {worst:.1f} ms (target ≤ 200 ms): {'met' if worst <= 200 else 'NOT met'}")
    rows: list[dict[str, Any]] = []
    for label in labels:
        row: dict[str, Any] = {"report": label}
        for backend in backends:
            p50, p95 = report[backend][1][label]
            row[f"{backend} p50 ms"], row[f"{backend} p95 ms"] = round(p50, 1), round(p95, 1)
        rows.append(row)
    ingest = ", ".join(f"{b} ingest {args.events / report[b][0]:,.0f} events/s" for b in backends)
    write_result(
        "analytics_reports",
        rows,
        notes=f"{args.events:,} events over 90 days, {args.runs} timed runs per report through the ASGI app; "
        f"{ingest}; worst p95 {worst:.1f} ms (target ≤ 200 ms).",
        extra={"events": args.events, "runs": args.runs, "worst_p95_ms": round(worst, 1)},
    )


if __name__ == "__main__":
    main()
