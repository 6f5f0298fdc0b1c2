"""Each mode builds only its own proxy client; the OpenAPI merge has its own session, opened when first
used; the lifespan closes all of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from switchboard_gateway.proxy.upstreams import AiohttpProxy, H1Proxy, Upstreams

from .conftest import FakeUpstream, gateway_env, make_settings


@pytest.mark.asyncio
async def test_h1_mode_has_no_aiohttp_session_until_the_openapi_merge(
    upstream: FakeUpstream, tmp_path: Path, sqlite_url: str
) -> None:
    async with gateway_env(sqlite_url, upstream, tmp_path) as env:
        upstreams: Upstreams = env.app.state.lifespan_state["runtime"].upstreams
        response = await env.client.post(
            "/v1/kbs/kb1/search", json={"query": "refunds"}, headers=env.server()
        )
        assert response.status_code == 200, response.text
        assert all(isinstance(upstream.proxy, H1Proxy) for upstream in upstreams.by_name.values())
        assert not upstreams.calls.opened

        assert (await env.client.get("/openapi.json")).json()["info"]["x-switchboard-missing-services"] == []
        assert upstreams.calls.opened
        session = upstreams.calls.get()
        assert all(upstream.session is session for upstream in upstreams.by_name.values())
    assert session.closed


@pytest.mark.asyncio
async def test_aiohttp_mode_proxies_on_its_own_sessions_and_closes_them(
    upstream: FakeUpstream, tmp_path: Path, sqlite_url: str
) -> None:
    async with gateway_env(sqlite_url, upstream, tmp_path, proxy_client="aiohttp") as env:
        upstreams: Upstreams = env.app.state.lifespan_state["runtime"].upstreams
        response = await env.client.post(
            "/v1/kbs/kb1/search", json={"query": "refunds"}, headers=env.server()
        )
        assert response.status_code == 200, response.text
        proxies = [upstream.proxy for upstream in upstreams.by_name.values()]
        assert all(isinstance(proxy, AiohttpProxy) and not proxy.session.closed for proxy in proxies)
        assert not upstreams.calls.opened

        assert (await env.client.get("/openapi.json")).json()["info"]["x-switchboard-missing-services"] == []
        calls = upstreams.calls.get()
        assert all(isinstance(proxy, AiohttpProxy) and proxy.session is not calls for proxy in proxies)
    assert calls.closed
    assert all(isinstance(proxy, AiohttpProxy) and proxy.session.closed for proxy in proxies)


def test_h1_mode_refuses_an_https_upstream(tmp_path: Path, sqlite_url: str) -> None:
    settings = make_settings(
        sqlite_url, "http://127.0.0.1:9", tmp_path, retrieval_url="https://retrieval.example"
    )
    with pytest.raises(ValueError, match="plain http only"):
        Upstreams(settings)
