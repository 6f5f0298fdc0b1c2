"""The demo CRM's HTTP API: customers by id / email / phone, a customer's orders, one order by number.

Answers are wrapped in ``{"data": ...}`` and field names differ from Switchboard's contracts on purpose,
so the demo exercises the same field mapping a real CRM needs.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import FastAPI, Header, Query
from fastapi.responses import JSONResponse

from switchboard_demo_crm.data import CUSTOMERS, ORDERS


def _normalise_phone(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit())


def create_demo_crm(token: str | None = "demo-crm-token") -> FastAPI:
    app = FastAPI(title="Switchboard demo CRM", description="A tiny CRM for demos and tests.")
    customers = {item["customer_id"]: item for item in CUSTOMERS}
    orders = {item["order_no"]: item for item in ORDERS}

    def unauthorized() -> JSONResponse:
        return JSONResponse({"error": "unauthorized"}, status_code=401)

    def authorized(authorization: str | None) -> bool:
        if token is None:
            return True
        return hmac.compare_digest((authorization or "").encode(), f"Bearer {token}".encode())

    def not_found(what: str) -> JSONResponse:
        return JSONResponse({"error": f"{what} not found"}, status_code=404)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> dict[str, Any]:
        return {"status": "ready", "customers": len(customers), "orders": len(orders)}

    @app.get("/api/customers/{customer_id}", response_model=None)
    async def customer(
        customer_id: str, authorization: Annotated[str | None, Header()] = None
    ) -> dict[str, Any] | JSONResponse:
        if not authorized(authorization):
            return unauthorized()
        found = customers.get(customer_id)
        return {"data": found} if found else not_found("customer")

    @app.get("/api/customers", response_model=None)
    async def search_customers(
        email: Annotated[str | None, Query()] = None,
        phone: Annotated[str | None, Query()] = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any] | JSONResponse:
        if not authorized(authorization):
            return unauthorized()
        matches = list(customers.values())
        if email:
            matches = [c for c in matches if c["contacts"]["email"].lower() == email.strip().lower()]
        if phone:
            digits = _normalise_phone(phone)
            matches = [c for c in matches if _normalise_phone(c["contacts"]["phone"]) == digits]
        return {"data": matches}

    @app.get("/api/customers/{customer_id}/orders", response_model=None)
    async def customer_orders(
        customer_id: str, authorization: Annotated[str | None, Header()] = None
    ) -> dict[str, Any] | JSONResponse:
        if not authorized(authorization):
            return unauthorized()
        if customer_id not in customers:
            return not_found("customer")
        return {"data": [order for order in orders.values() if order["customer_id"] == customer_id]}

    @app.get("/api/orders/{order_no}", response_model=None)
    async def order(
        order_no: str, authorization: Annotated[str | None, Header()] = None
    ) -> dict[str, Any] | JSONResponse:
        if not authorized(authorization):
            return unauthorized()
        found = orders.get(order_no.strip().upper())
        return {"data": found} if found else not_found("order")

    return app
