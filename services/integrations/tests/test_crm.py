"""CRM lookups through the service: the demo CRM over real HTTP, and a misbehaving CRM (missing fields,
wrong types, 404, 429 with Retry-After, 5xx, timeouts, an open breaker)."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from integrations_fakes import FakeServer, Recorded, Service, ServiceFactory, assert_error_shape

from switchboard_shared.testing.processes import ServiceProcess

Fake = Callable[[], Awaitable[FakeServer]]


@pytest.mark.asyncio
async def test_demo_tenant_order_and_customer_lookups_against_the_demo_crm(
    demo_crm: ServiceProcess, service_factory: ServiceFactory, database_url: str
) -> None:
    service = await service_factory(demo_crm_url=demo_crm.url, database_url=database_url)
    headers = service.headers("demo")
    order = await service.client.post(
        "/internal/v1/crm/orders/lookup", json={"order_number": "a-1001"}, headers=headers
    )
    assert order.status_code == 200, order.text
    assert order.json() == {
        "number": "A-1001",
        "status": "shipped",
        "customer_id": "C-1001",
        "items": [
            {"name": "Чайник электрический", "quantity": 1, "price": 3490.0},
            {"name": "Фильтр для воды", "quantity": 2, "price": 450.0},
        ],
        "total": 4390.0,
        "currency": "RUB",
        "tracking_number": "RU123456789",
        "tracking_url": "https://tracking.example.ru/RU123456789",
        "created_at": "2026-11-18T09:30:00Z",
        "updated_at": "2026-11-20T14:05:00Z",
    }
    by_email = await service.client.post(
        "/internal/v1/crm/customers/lookup",
        json={"by": "email", "value": "Emily.Carter@example.com"},
        headers=headers,
    )
    assert by_email.json()["id"] == "C-2001" and by_email.json()["balance"] == 42.0
    by_phone = await service.client.post(
        "/internal/v1/crm/customers/lookup",
        json={"by": "phone", "value": "+7 916 123-45-67"},
        headers=headers,
    )
    assert by_phone.json() == {
        "id": "C-1001",
        "name": "Анна Петрова",
        "email": "anna.petrova@example.ru",
        "phone": "+79161234567",
        "balance": 1250.5,
        "currency": "RUB",
        "extra": {"tier": "gold", "city": "Москва"},
    }
    orders = await service.client.get("/internal/v1/crm/customers/C-1001/orders", headers=headers)
    assert [o["number"] for o in orders.json()] == ["A-1001", "A-1002"]

    missing = await service.client.post(
        "/internal/v1/crm/orders/lookup", json={"order_number": "Z-9"}, headers=headers
    )
    assert_error_shape(missing, 404, "not_found")
    # An order of another customer answers exactly like a missing one.
    foreign = await service.client.post(
        "/internal/v1/crm/orders/lookup",
        json={"order_number": "B-2001", "customer_id": "C-1001"},
        headers=headers,
    )
    assert_error_shape(foreign, 404, "not_found")
    unverified = await service.client.post(
        "/internal/v1/crm/customers/lookup",
        json={"by": "id", "value": "C-1001"},
        headers={**headers, "X-End-User-ID": "widget-user"},
    )
    assert_error_shape(unverified, 403, "forbidden")
    other_tenant = await service.client.post(
        "/internal/v1/crm/orders/lookup", json={"order_number": "A-1001"}, headers=service.headers("acme")
    )
    assert_error_shape(other_tenant, 404, "not_found")
    invalid = await service.client.post(
        "/internal/v1/crm/customers/lookup", json={"by": "name"}, headers=headers
    )
    assert_error_shape(invalid, 422, "validation_error")


def crm_config(url: str, **settings: object) -> dict[str, object]:
    return {
        "kind": "crm_rest",
        "name": "Flaky CRM",
        "settings": {
            "base_url": url,
            "auth": "api_key",
            "api_key_header": "X-Api-Key",
            "timeout_seconds": 0.5,
            "cache_ttl_seconds": 60,
            "customer_fields": {"name": "fullName", "balance": "balance.amount"},
            **settings,
        },
        "secrets": {"api_key": "crm-secret-key-123456"},
    }


async def _with_crm(service: Service, crm: FakeServer, **settings: object) -> None:
    created = await service.client.post(
        "/internal/v1/connectors", json=crm_config(crm.url, **settings), headers=service.headers()
    )
    assert created.status_code == 201, created.text
    assert created.json()["secrets"] == {"api_key": "****3456"}


@pytest.mark.asyncio
async def test_misbehaving_crm(fake: Fake, service_factory: ServiceFactory) -> None:
    crm = await fake()
    attempts: dict[str, int] = {}

    def count(name: str) -> int:
        attempts[name] = attempts.get(name, 0) + 1
        return attempts[name]

    @crm.route("GET /customers/typed")
    async def typed(_: Recorded) -> web.StreamResponse:
        return web.json_response(
            {"id": 77, "fullName": ["not", "text"], "email": "x@example.com", "balance": {"amount": "12,50"}}
        )

    @crm.route("GET /customers/noid")
    async def noid(_: Recorded) -> web.StreamResponse:
        return web.json_response({"fullName": "Nobody"})

    @crm.route("GET /customers/limited")
    async def limited(_: Recorded) -> web.StreamResponse:
        if count("limited") == 1:
            return web.json_response({"error": "slow down"}, status=429, headers={"Retry-After": "1"})
        return web.json_response({"id": "limited", "fullName": "Rate Limited"})

    @crm.route("GET /customers/broken")
    async def broken(_: Recorded) -> web.StreamResponse:
        count("broken")
        return web.Response(status=503, text="upstream down")

    @crm.route("GET /customers/slow")
    async def slow(_: Recorded) -> web.StreamResponse:
        await asyncio.sleep(2)
        return web.json_response({"id": "slow"})

    @crm.route("GET /customers/text")
    async def text(_: Recorded) -> web.StreamResponse:
        return web.Response(text="<html>oops</html>", content_type="text/html")

    @crm.route("GET /orders/O-1")
    async def order(_: Recorded) -> web.StreamResponse:
        return web.json_response(
            {
                "number": 1,
                "status": "paid",
                "items": [{"name": "Pen", "quantity": "3", "price": "1.5"}, {"qty": 2}, "junk"],
                "total": True,
            }
        )

    service = await service_factory(breaker_fail_max=50)
    await _with_crm(service, crm)
    headers = service.headers()

    async def lookup(value: str) -> object:
        return await service.client.post(
            "/internal/v1/crm/customers/lookup", json={"by": "id", "value": value}, headers=headers
        )

    typed_response = await lookup("typed")
    assert typed_response.json() == {
        "id": "77",
        "name": None,
        "email": "x@example.com",
        "phone": None,
        "balance": 12.5,
        "currency": None,
        "extra": {},
    }
    assert crm.requests[0].headers["X-Api-Key"] == "crm-secret-key-123456"
    # Cached: the second lookup does not reach the CRM.
    await lookup("typed")
    assert len(crm.calls("GET", "/customers/typed")) == 1

    error = assert_error_shape(await lookup("noid"), 502, "upstream_error")
    assert "'id'" in error["message"]
    assert_error_shape(await lookup("nobody"), 404, "not_found")
    assert_error_shape(await lookup("text"), 502, "upstream_error")

    started = time.perf_counter()
    limited_response = await lookup("limited")
    assert limited_response.status_code == 200, limited_response.text
    assert time.perf_counter() - started >= 0.95, "Retry-After was not honoured"
    assert attempts["limited"] == 2

    assert_error_shape(await lookup("broken"), 502, "upstream_error")
    assert attempts["broken"] == 3, "a GET is retried twice"

    started = time.perf_counter()
    assert_error_shape(await lookup("slow"), 504, "upstream_timeout")
    assert time.perf_counter() - started < 1.9

    order_response = await service.client.post(
        "/internal/v1/crm/orders/lookup", json={"order_number": "O-1"}, headers=headers
    )
    assert order_response.json()["items"] == [{"name": "Pen", "quantity": 3, "price": 1.5}]
    assert order_response.json()["number"] == "1" and order_response.json()["total"] is None


@pytest.mark.asyncio
async def test_open_breaker_answers_fast_and_shows_in_readyz(
    fake: Fake, service_factory: ServiceFactory
) -> None:
    crm = await fake()

    @crm.route("GET /customers/*")
    async def down(_: Recorded) -> web.StreamResponse:
        return web.Response(status=500)

    service = await service_factory(breaker_fail_max=2, breaker_reset_seconds=30, http_retries=0)
    await _with_crm(service, crm)
    for value in ("a", "b"):
        await service.client.post(
            "/internal/v1/crm/customers/lookup", json={"by": "id", "value": value}, headers=service.headers()
        )
    seen = len(crm.requests)
    started = time.perf_counter()
    response = await service.client.post(
        "/internal/v1/crm/customers/lookup", json={"by": "id", "value": "c"}, headers=service.headers()
    )
    error = assert_error_shape(response, 503, "upstream_unavailable")
    assert "circuit open" in error["message"] and response.headers["Retry-After"] == "30"
    assert time.perf_counter() - started < 0.5
    assert len(crm.requests) == seen
    ready = (await service.client.get("/readyz")).json()
    assert any(name.startswith("crm_rest:") and state == "open" for name, state in ready["breakers"].items())
    metrics = (await service.client.get("/metrics")).text
    assert 'switchboard_breaker_state{downstream="crm_rest:' in metrics


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("auth", "settings", "secrets", "expected"),
    [
        ("bearer", {}, {"token": "tok-123"}, {"Authorization": "Bearer tok-123"}),
        (
            "basic",
            {"username": "bot"},
            {"password": "pw"},
            {"Authorization": "Basic " + base64.b64encode(b"bot:pw").decode()},
        ),
        ("api_key", {"api_key_header": "X-Key"}, {"api_key": "k-1"}, {"X-Key": "k-1"}),
    ],
)
async def test_crm_auth_and_endpoint_templates(
    fake: Fake,
    service_factory: ServiceFactory,
    auth: str,
    settings: dict[str, str],
    secrets: dict[str, str],
    expected: dict[str, str],
) -> None:
    crm = await fake()

    @crm.route("GET /v2/search")
    async def search(_: Recorded) -> web.StreamResponse:
        return web.json_response({"results": [{"id": "c-1", "name": "Zoë"}]})

    service = await service_factory()
    body = {
        "kind": "crm_rest",
        "settings": {
            "base_url": crm.url,
            "auth": auth,
            "envelope": "results",
            "endpoints": {"customer_by_email": "/v2/search?q={email}&field=email"},
            **settings,
        },
        "secrets": secrets,
    }
    assert (
        await service.client.post("/internal/v1/connectors", json=body, headers=service.headers())
    ).status_code == 201
    response = await service.client.post(
        "/internal/v1/crm/customers/lookup",
        json={"by": "email", "value": "zoë+1@example.com"},
        headers=service.headers(),
    )
    assert response.json()["name"] == "Zoë"
    request = crm.requests[-1]
    assert request.query == {"q": "zoë+1@example.com", "field": "email"}
    for header, value in expected.items():
        assert request.headers[header] == value


@pytest.mark.asyncio
async def test_unparsable_or_private_base_urls_are_a_422(service_factory: ServiceFactory) -> None:
    service = await service_factory(url_allowlist=[])
    for url in (
        "http://[::1",
        "http://[zz]/",
        "http://crm.example.com:port/",
        "http://127.0.0.1:9/",
        "https://crm.example.com/?x=",
    ):
        created = await service.client.post(
            "/internal/v1/connectors", json=crm_config(url), headers=service.headers()
        )
        assert_error_shape(created, 422, "validation_error")
