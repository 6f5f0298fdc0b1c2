"""What every benchmark shares: percentiles, alternating A/B rounds, machine facts, result files.

A scenario script measures its targets side by side in one run (alternating, so machine drift evens out)
and calls ``write_result`` with its rows; ``bench/run.py`` runs the scenarios and writes the summary.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
VERSIONS_OF = (
    "fastapi",
    "uvicorn",
    "aiohttp",
    "httpx",
    "sqlalchemy",
    "chromadb",
    "onnxruntime",
    "langchain-core",
    "redis",
)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[rank]


def summarise(values: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "median": statistics.median(values) if values else float("nan"),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "min": min(values) if values else float("nan"),
        "max": max(values) if values else float("nan"),
    }


def machine() -> dict[str, Any]:
    versions = {}
    for name in VERSIONS_OF:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
    }


def write_result(
    scenario: str, rows: list[dict[str, Any]], *, notes: str = "", extra: dict[str, Any] | None = None
) -> Path:
    """Write ``results/<date>-<scenario>.json`` and a Markdown table beside it; return the JSON path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    payload = {
        "scenario": scenario,
        "measured_at": dt.datetime.now(dt.UTC).isoformat(),
        "machine": machine(),
        "rows": rows,
        "notes": notes,
        **(extra or {}),
    }
    path = RESULTS / f"{stamp}-{scenario}.json"
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False))
    path.with_suffix(".md").write_text(markdown_table(scenario, rows, notes))
    return path


def markdown_table(scenario: str, rows: list[dict[str, Any]], notes: str = "") -> str:
    if not rows:
        return f"### {scenario}\n\n(no rows)\n"
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = [f"### {scenario}", "", "| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column, "")
            cells.append(f"{value:.3g}" if isinstance(value, float) else str(value))
        lines.append("| " + " | ".join(cells) + " |")
    if notes:
        lines += ["", notes]
    return "\n".join(lines) + "\n"
