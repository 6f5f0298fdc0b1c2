"""The API docs in Chromium on a machine without internet access: the gateway's ``/docs`` (and a service's
own) render their operations with every request outside the loopback refused, and the gateway has an icon.
Screenshots go to ``test-output/browser/<test name>/``."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import BrowserContext, Route, expect

from switchboard_cli.fleet import Fleet, ServiceSpec
from switchboard_shared.testing.servers import free_port

from .conftest import Shots

pytestmark = [pytest.mark.e2e]

LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The gateway and chat as real processes (the gateway's /docs merges chat's public operations)."""
    data_dir = tmp_path_factory.mktemp("docs-fleet")
    specs = [ServiceSpec(name, "127.0.0.1", free_port()) for name in ("gateway", "chat")]
    fleet = Fleet(specs, data_dir, extra_env={"GATEWAY_ADMIN_TOKEN": "docs-tests-operator-token"})
    fleet.start()
    try:
        ready = fleet.wait_ready(120.0)
        if not all(ready.values()):
            pytest.fail(f"the services did not become ready: {ready}; logs in {data_dir / 'logs'}")
        yield {spec.name: spec.url for spec in specs}
    finally:
        fleet.stop()


@pytest.fixture
def offline(context: BrowserContext) -> Iterator[list[tuple[str, str]]]:
    """Every request to a host outside the loopback is refused, as on a machine without internet access;
    yields the refused requests as (resource type, URL)."""
    refused: list[tuple[str, str]] = []

    def only_loopback(route: Route) -> None:
        if urlsplit(route.request.url).hostname in LOOPBACK:
            route.continue_()
        else:
            refused.append((route.request.resource_type, route.request.url))
            route.abort("internetdisconnected")

    context.route("**/*", only_loopback)
    yield refused


def test_gateway_docs_render_offline(
    context: BrowserContext, services: dict[str, str], offline: list[tuple[str, str]], shots: Shots
) -> None:
    page = context.new_page()
    page.goto(f"{services['gateway']}/docs")
    completions = page.locator(".opblock-summary-path", has_text="/v1/chat/completions")
    expect(completions.first).to_be_visible(timeout=30_000)
    shots.take(page, "gateway-docs-offline")
    # Chat's public operations, merged in by the gateway, render too.
    expect(page.locator(".opblock-summary-path", has_text="/v1/conversations").first).to_be_visible()
    assert page.locator(".opblock").count() > 20
    completions.first.click()
    expect(page.locator(".opblock-body").first).to_be_visible()
    shots.take(page, "gateway-docs-operation")
    assert page.locator("link[rel~=icon]").first.get_attribute("href") == "/favicon.ico"
    assert offline == [], offline

    icon = page.request.get(f"{services['gateway']}/favicon.ico")
    assert icon.status == 200 and icon.headers["content-type"] == "image/x-icon"
    assert icon.body()[:4] == b"\x00\x00\x01\x00"  # an ICO file


def test_service_docs_and_redoc_render_offline(
    context: BrowserContext, services: dict[str, str], offline: list[tuple[str, str]], shots: Shots
) -> None:
    page = context.new_page()
    page.goto(f"{services['chat']}/docs")
    expect(page.locator(".opblock-summary-path", has_text="/internal/v1/conversations").first).to_be_visible(
        timeout=30_000
    )
    shots.take(page, "chat-docs-offline")
    assert offline == [], offline
    page.goto(f"{services['gateway']}/redoc")
    expect(page.get_by_text("/v1/chat/completions").first).to_be_attached(timeout=30_000)
    shots.take(page, "gateway-redoc-offline")
    # ReDoc's bundle links its own "API docs by Redocly" logo from its CDN: the only request left, decorative.
    assert [kind for kind, _ in offline] in ([], ["image"]), offline
