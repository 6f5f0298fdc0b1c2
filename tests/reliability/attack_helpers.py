"""Pieces the attack tests share: the tenant's answers from the extractive provider, widget headers."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from .fleet import ReliabilityFleet

ORIGIN = "http://localhost:3000"


def widget_headers(key: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Origin": ORIGIN, **extra}


@pytest.fixture
def extractive_demo(fleet: ReliabilityFleet) -> Iterator[None]:
    """The demo tenant answers with the extractive provider (which routes "order <number>" to the tools)."""
    server = {"Authorization": f"Bearer {fleet.demo['server_key']}"}
    before = httpx.get(f"{fleet.gateway}/v1/assistant", headers=server, timeout=10).json()
    changed = httpx.put(
        f"{fleet.gateway}/v1/assistant",
        json={**before, "providers": ["extractive"]},
        headers=server,
        timeout=10,
    )
    assert changed.status_code == 200, changed.text
    try:
        yield
    finally:
        httpx.put(f"{fleet.gateway}/v1/assistant", json=before, headers=server, timeout=10)
