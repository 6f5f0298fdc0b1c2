"""The gateway's own pages: its icon, and the API docs whose assets it serves itself (no CDN)."""

from __future__ import annotations

import pytest

from .conftest import Env


@pytest.mark.asyncio
async def test_favicon_is_served_without_the_static_folder(env: Env) -> None:
    icon = await env.client.get("/favicon.ico")
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/x-icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO file
    assert "max-age" in icon.headers["cache-control"]


@pytest.mark.asyncio
async def test_docs_use_the_gateway_icon_and_local_assets(env: Env) -> None:
    docs = await env.client.get("/docs")
    assert docs.status_code == 200
    assert 'href="/favicon.ico"' in docs.text
    assert "/docs/assets/swagger-ui-bundle.js" in docs.text and "https://" not in docs.text
    bundle = await env.client.get("/docs/assets/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and len(bundle.content) > 100_000
