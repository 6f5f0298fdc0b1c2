"""The tenant's approved curated answers as extra test questions: every wording of every live entry (its
question and variants) is asked through the gateway with the tenant's own assistant settings, and must be
answered with that entry (or an entry of its group, the answer in the customer's language). A miss means a
customer asking exactly what operators approved gets something else: an entry expired, tied to a knowledge
base the assistant no longer searches, or a threshold or model change that moved it out of reach."""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from switchboard_cli.evaluation.runner import check_response

CURATED_PROVIDER = "curated"  # the provider chat names on a curated answer
PAGE = 200
MAX_LISTED_MISSES = 20


@dataclass(frozen=True, slots=True)
class CuratedCase:
    entry_id: str
    wording: str
    expected: frozenset[str]  # the entry's answer and those of its group


@dataclass(frozen=True, slots=True)
class CuratedOutcome:
    entry_id: str
    wording: str
    outcome: str  # matched | other (another curated answer) | missed (no curated answer)
    answer: str
    latency_ms: float


def curated_cases(client: httpx.Client, *, now: datetime | None = None) -> list[CuratedCase]:
    """Every wording of every curated answer of the key's tenant that has not expired."""
    now = now or datetime.now(UTC)
    entries: list[dict[str, Any]] = []
    while True:
        page = check_response(client.get("/v1/curated", params={"limit": PAGE, "offset": len(entries)}))
        entries += page["items"]
        if not page["items"] or len(entries) >= page["total"]:
            break
    groups: dict[str, set[str]] = {}
    for entry in entries:
        if entry.get("group"):
            groups.setdefault(entry["group"], set()).add(entry["answer"])
    cases = []
    for entry in entries:
        expires = entry.get("expires_at")
        if expires and datetime.fromisoformat(expires) <= now:
            continue
        expected = frozenset({entry["answer"], *groups.get(entry.get("group") or "", set())})
        for wording in dict.fromkeys([entry["question"], *entry.get("variants", [])]):
            cases.append(CuratedCase(entry["id"], wording, expected))
    return cases


def ask_curated(client: httpx.Client, case: CuratedCase) -> CuratedOutcome:
    end_user = f"eval-curated-{uuid.uuid4().hex[:12]}"
    conversation = check_response(
        client.post("/v1/conversations", json={"channel": "api", "end_user_id": end_user})
    )
    started = time.perf_counter()
    turn = check_response(
        client.post(f"/v1/conversations/{conversation['id']}/messages", json={"text": case.wording})
    )
    latency = (time.perf_counter() - started) * 1000
    reply = turn.get("reply") or {}
    text = str(reply.get("text", ""))
    if reply.get("provider") != CURATED_PROVIDER:
        outcome = "missed"
    else:
        outcome = "matched" if text in case.expected else "other"
    return CuratedOutcome(case.entry_id, case.wording, outcome, text, round(latency, 1))


def curated_report(outcomes: list[CuratedOutcome]) -> dict[str, Any]:
    counts = {name: sum(o.outcome == name for o in outcomes) for name in ("matched", "other", "missed")}
    return {
        "wordings": len(outcomes),
        "entries": len({o.entry_id for o in outcomes}),
        **counts,
        "match_rate": round(counts["matched"] / len(outcomes), 3) if outcomes else None,
        "not_matched": [asdict(o) for o in outcomes if o.outcome != "matched"][:MAX_LISTED_MISSES],
    }
