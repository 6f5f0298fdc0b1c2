"""``make bench``: run every benchmark scenario (or the named ones), each bounded in time, then write
``results/SUMMARY.md`` from the newest result of each scenario and the README's Performance section.

Usage: python bench/run.py [SCENARIO ...] [--timeout SECONDS] [--list]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
NOT_SCENARIOS = {"common", "run", "__init__"}
README_START = "<!-- bench-summary:start -->"
README_END = "<!-- bench-summary:end -->"


def scenarios() -> list[str]:
    return sorted(
        p.stem for p in HERE.glob("*.py") if p.stem not in NOT_SCENARIOS and not p.stem.startswith("_")
    )


def run(name: str, timeout: float) -> tuple[int, float]:
    started = time.monotonic()
    try:
        code = subprocess.run(
            [sys.executable, str(HERE / f"{name}.py")], cwd=ROOT, timeout=timeout
        ).returncode
    except subprocess.TimeoutExpired:
        code = 124
    return code, time.monotonic() - started


def summary() -> str:
    newest: dict[str, Path] = {}
    for path in sorted((HERE / "results").glob("*.json")):
        try:
            scenario = json.loads(path.read_text())["scenario"]
        except (ValueError, KeyError):
            continue
        newest[scenario] = path
    parts = ["## Latest benchmark results", ""]
    for scenario in sorted(newest):
        table = newest[scenario].with_suffix(".md")
        if table.exists():
            parts.append(f"Measured {newest[scenario].stem[:10]}:")
            parts.append("")
            parts.append(table.read_text().strip())
            parts.append("")
    return "\n".join(parts)


def update_readme(text: str) -> None:
    readme = ROOT / "README.md"
    content = readme.read_text()
    if README_START not in content:
        return
    head, rest = content.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(f"{head}{README_START}\n{text}\n{README_END}{tail}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("names", nargs="*")
    parser.add_argument("--timeout", type=float, default=900.0, help="per scenario, seconds")
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args()
    available = scenarios()
    if args.list:
        print("\n".join(available))
        return 0
    chosen = args.names or available
    unknown = sorted(set(chosen) - set(available))
    if unknown:
        print(f"unknown scenarios: {unknown}; available: {available}")
        return 2
    failed = []
    for name in chosen:
        print(f"== {name}", flush=True)
        code, seconds = run(name, args.timeout)
        print(f"== {name}: exit {code} in {seconds:.0f}s", flush=True)
        if code != 0:
            failed.append(name)
    text = summary()
    (HERE / "results" / "SUMMARY.md").write_text(text + "\n")
    update_readme(text)
    if failed:
        print(f"failed scenarios: {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
