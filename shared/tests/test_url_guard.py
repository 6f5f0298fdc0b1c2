"""The fleet's one address guard: which addresses a tenant-chosen URL may reach, allow-list forms, base
URL syntax, and the aiohttp resolver that applies the rule at connect time."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web

from switchboard_shared.testing.servers import free_port
from switchboard_shared.url_guard import (
    AddressGuard,
    HostUnresolvable,
    UrlRefused,
    allowlist_with,
    validate_base_url,
)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://localhost:8001/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://127.1/",
        "http://0.0.0.0/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://192.168.1.1/",
        "http://[fd00::1]/",
        "http://224.0.0.1/",
        "ftp://example.com/",
        "file:///etc/passwd",
        "http://[::1",
        "http://[zz]/",
    ],
)
async def test_non_public_addresses_and_other_schemes_are_refused(url: str) -> None:
    with pytest.raises(UrlRefused):
        await AddressGuard().check(url)


@pytest.mark.asyncio
async def test_allow_list_forms() -> None:
    guard = AddressGuard(["127.0.0.1:8010", "10.0.0.0/8", "crm.internal"])
    await guard.check("http://127.0.0.1:8010/api")
    await guard.check("http://10.20.30.40/")
    await guard.check("https://crm.internal/")  # allowed by name, whatever it resolves to
    with pytest.raises(UrlRefused):
        await guard.check("http://127.0.0.1:8011/api")
    with pytest.raises(HostUnresolvable):
        await guard.check("http://no-such-host.invalid/")


def test_allowlist_with_adds_operator_urls() -> None:
    assert allowlist_with(["10.0.0.0/8"], "http://127.0.0.1:8010", None, "https://[::1]/x") == [
        "10.0.0.0/8",
        "127.0.0.1:8010",
        "[::1]:443",
    ]


@pytest.mark.parametrize(
    "url",
    [
        "https://crm.example.com/api?x=",
        "https://crm.example.com/api#frag",
        "https://user:pass@crm.example.com/",
        "gopher://crm.example.com/",
        "https:///nohost",
        "https://crm.example.com:99999/",
        "http://[::1",
        "http://[zz]/",
        "http://crm.example.com:port/",
    ],
)
def test_base_url_syntax(url: str) -> None:
    with pytest.raises(UrlRefused):
        validate_base_url(url)
    assert validate_base_url("https://crm.example.com/api/") == "https://crm.example.com/api"


@pytest.mark.asyncio
async def test_resolver_refuses_at_connect_time() -> None:
    """A name is resolved again when aiohttp connects: a private answer then is refused too."""

    async def internal(_: web.Request) -> web.Response:
        return web.Response(text="internal")

    app = web.Application()
    app.router.add_get("/", internal)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        connector = aiohttp.TCPConnector(resolver=AddressGuard().resolver())
        async with aiohttp.ClientSession(connector=connector) as session:
            with pytest.raises(aiohttp.ClientConnectorError):
                await session.get(f"http://localhost:{port}/")
        allowed = aiohttp.TCPConnector(resolver=AddressGuard([f"localhost:{port}"]).resolver())
        async with aiohttp.ClientSession(connector=allowed) as session:
            async with session.get(f"http://localhost:{port}/") as response:
                assert await response.text() == "internal"
    finally:
        await runner.cleanup()


@pytest.mark.asyncio
async def test_pinned_request_goes_to_the_checked_address() -> None:
    guard = AddressGuard(["127.0.0.0/8", "::1/128"])
    target, headers, extensions = await guard.pinned("https://localhost:8443/a/b?q=1#frag")
    assert target in ("https://127.0.0.1:8443/a/b?q=1", "https://[::1]:8443/a/b?q=1")
    assert headers == {"Host": "localhost:8443"} and extensions == {"sni_hostname": "localhost"}
    by_name = AddressGuard(["crm.internal"])
    assert await by_name.pinned("http://crm.internal/x") == ("http://crm.internal/x", {}, {})
