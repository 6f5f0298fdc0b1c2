"""The demo CRM's HTTP API as the demo tenant's CRM connector reads it: the bearer token, customers by id,
email and phone, a customer's orders, one order by number, and its own JSON shape in a ``data`` envelope."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from switchboard_demo_crm.app import create_demo_crm
from switchboard_demo_crm.data import CUSTOMERS

TOKEN = "demo-crm-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest_asyncio.fixture
async def crm() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_demo_crm(TOKEN))
    async with httpx.AsyncClient(transport=transport, base_url="http://demo-crm") as client:
        yield client


@pytest.mark.asyncio
async def test_health_and_readiness_need_no_token(crm: httpx.AsyncClient) -> None:
    assert (await crm.get("/healthz")).json() == {"status": "ok"}
    assert (await crm.get("/readyz")).json() == {"status": "ready", "customers": 4, "orders": 5}


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "path", ["/api/customers/C-1001", "/api/customers?email=x@example.com", "/api/orders/A-1001"]
)
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}])
async def test_every_record_route_wants_the_bearer_token(
    crm: httpx.AsyncClient, path: str, headers: dict[str, str]
) -> None:
    response = await crm.get(path, headers=headers)
    assert (response.status_code, response.json()) == (401, {"error": "unauthorized"})


@pytest.mark.asyncio
async def test_without_a_token_it_answers_anyone() -> None:
    transport = httpx.ASGITransport(app=create_demo_crm(None))
    async with httpx.AsyncClient(transport=transport, base_url="http://demo-crm") as client:
        response = await client.get("/api/customers/C-2001")
    assert response.status_code == 200
    assert response.json()["data"]["full_name"] == "Emily Carter"


@pytest.mark.asyncio
async def test_customer_by_id_email_and_phone_in_the_crms_own_shape(crm: httpx.AsyncClient) -> None:
    by_id = await crm.get("/api/customers/C-1001", headers=AUTH)
    (record,) = [customer for customer in CUSTOMERS if customer["customer_id"] == "C-1001"]
    assert by_id.json() == {"data": record}
    assert by_id.json()["data"]["contacts"]["phone"] == "+79161234567"
    by_email = await crm.get("/api/customers", params={"email": " Emily.Carter@EXAMPLE.com "}, headers=AUTH)
    assert [c["customer_id"] for c in by_email.json()["data"]] == ["C-2001"]
    by_phone = await crm.get("/api/customers", params={"phone": "+7 (916) 123-45-67"}, headers=AUTH)
    assert [c["customer_id"] for c in by_phone.json()["data"]] == ["C-1001"]
    nobody = await crm.get("/api/customers", params={"email": "nobody@example.com"}, headers=AUTH)
    assert nobody.json() == {"data": []}


@pytest.mark.asyncio
async def test_orders_of_a_customer_and_by_number(crm: httpx.AsyncClient) -> None:
    orders = await crm.get("/api/customers/C-1001/orders", headers=AUTH)
    assert [o["order_no"] for o in orders.json()["data"]] == ["A-1001", "A-1002"]
    order = await crm.get("/api/orders/ a-1003 ", headers=AUTH)
    assert order.status_code == 200
    assert order.json()["data"]["state"] == "processing"
    assert order.json()["data"]["lines"] == [{"title": "Робот-пылесос", "qty": 1, "unit_price": 18990.0}]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("path", "what"),
    [
        ("/api/customers/C-9999", "customer"),
        ("/api/customers/C-9999/orders", "customer"),
        ("/api/orders/Z-9", "order"),
    ],
)
async def test_unknown_records_are_404(crm: httpx.AsyncClient, path: str, what: str) -> None:
    response = await crm.get(path, headers=AUTH)
    assert (response.status_code, response.json()) == (404, {"error": f"{what} not found"})
