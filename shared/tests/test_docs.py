"""Every service's ``/docs`` and ``/redoc`` load their assets from the service itself, never from a CDN."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

ASSET = re.compile(r"""(?:src|href)=["']([^"']+)["']|url: *["']([^"']+)["']""")


def references(html: str) -> list[str]:
    return [a or b for a, b in ASSET.findall(html)]


@pytest.mark.asyncio
@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_reference_only_their_own_assets(
    demo_app: tuple[Any, httpx.AsyncClient], page: str
) -> None:
    _, client = demo_app
    response = await client.get(page)
    assert response.status_code == 200
    refs = references(response.text)
    assert refs, response.text
    assert not [ref for ref in refs if "//" in ref], refs  # no absolute URL: nothing from another host
    for ref in refs:
        asset = await client.get(ref)
        assert asset.status_code == 200, ref
        assert asset.content, ref
    scripts = [ref for ref in refs if ref.endswith(".js")]
    assert scripts and all(ref.startswith("/docs/assets/") for ref in scripts), scripts
