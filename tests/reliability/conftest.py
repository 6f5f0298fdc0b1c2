"""Session fixtures of the reliability suite: one production-shaped fleet shared by every module."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from switchboard_shared.testing.plugin import unavailable

from .fleet import ReliabilityFleet, reliability_fleet


@pytest.fixture(scope="session")
def fleet() -> Iterator[ReliabilityFleet]:
    try:
        manager = reliability_fleet()
        running = manager.__enter__()
    except (FileNotFoundError, OSError) as exc:
        unavailable(f"PostgreSQL or Redis cannot start: {exc}")
        raise
    try:
        yield running
    finally:
        manager.__exit__(None, None, None)


@pytest.fixture(scope="session")
def output_dir() -> str:
    path = os.path.join("test-output", "reliability")
    os.makedirs(path, exist_ok=True)
    return path
