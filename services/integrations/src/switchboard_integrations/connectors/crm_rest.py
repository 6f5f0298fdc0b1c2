"""The generic REST CRM connector: per-tenant base URL, auth, endpoint templates and a field mapping
from the CRM's JSON to ``Customer`` / ``Order``; answers cached briefly per tenant."""

from __future__ import annotations

import base64
import contextlib
import hashlib
from typing import Any, Literal
from urllib.parse import quote

import orjson
from pydantic import Field, model_validator

from switchboard_integrations.connectors.base import CrmConnector, PluginSettings, register
from switchboard_integrations.connectors.mapping import (
    as_datetime,
    as_float,
    as_int,
    as_text,
    dig,
    required_text,
)
from switchboard_shared.contracts.integrations import Customer, CustomerLookup, Order, OrderItem
from switchboard_shared.errors import AppError, ErrorCode
from switchboard_shared.http_client import DownstreamResponse
from switchboard_shared.stores import StoreUnavailable

CUSTOMER_FIELDS = ("id", "name", "email", "phone", "balance", "currency")
ORDER_FIELDS = (
    "number",
    "status",
    "customer_id",
    "items",
    "total",
    "currency",
    "tracking_number",
    "tracking_url",
    "created_at",
    "updated_at",
)
ITEM_FIELDS = ("name", "quantity", "price")


class CrmEndpoints(PluginSettings):
    customer_by_id: str = "/customers/{id}"
    customer_by_email: str = "/customers?email={email}"
    customer_by_phone: str = "/customers?phone={phone}"
    customer_orders: str = "/customers/{id}/orders"
    order_by_number: str = "/orders/{number}"


class CrmRestSettings(PluginSettings):
    base_url: str = Field(pattern=r"^https?://", max_length=500)
    auth: Literal["none", "bearer", "basic", "api_key"] = "none"
    api_key_header: str = Field(default="X-API-Key", max_length=100)
    username: str | None = Field(default=None, max_length=200, description="Basic auth user")
    timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    cache_ttl_seconds: float | None = Field(default=None, ge=0, le=3600)
    envelope: str | None = Field(default=None, description="Dotted path of the payload, e.g. 'data'")
    endpoints: CrmEndpoints = Field(default_factory=CrmEndpoints)
    customer_fields: dict[str, str] = Field(default_factory=dict, description="our field → CRM path")
    customer_extra: dict[str, str] = Field(default_factory=dict, description="extra key → CRM path")
    order_fields: dict[str, str] = Field(default_factory=dict)
    item_fields: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_fields(self) -> CrmRestSettings:
        for mapping, allowed in (
            (self.customer_fields, CUSTOMER_FIELDS),
            (self.order_fields, ORDER_FIELDS),
            (self.item_fields, ITEM_FIELDS),
        ):
            unknown = set(mapping) - set(allowed)
            if unknown:
                raise ValueError(f"unknown mapped fields {sorted(unknown)}; allowed: {list(allowed)}")
        return self


class CrmRestSecrets(PluginSettings):
    token: str | None = Field(default=None, description="Bearer token")
    password: str | None = Field(default=None, description="Basic auth password")
    api_key: str | None = Field(default=None, description="Value of the API-key header")


def render(template: str, **values: str) -> str:
    return template.format(**{key: quote(value, safe="") for key, value in values.items()})


@register
class RestCrmConnector(CrmConnector):
    kind = "crm_rest"
    settings_model = CrmRestSettings
    secrets_model = CrmRestSecrets
    settings: CrmRestSettings
    secrets: CrmRestSecrets

    def auth_headers(self) -> dict[str, str]:
        settings, secrets = self.settings, self.secrets
        if settings.auth == "bearer" and secrets.token:
            return {"Authorization": f"Bearer {secrets.token}"}
        if settings.auth == "basic" and settings.username is not None:
            raw = f"{settings.username}:{secrets.password or ''}".encode()
            return {"Authorization": f"Basic {base64.b64encode(raw).decode()}"}
        if settings.auth == "api_key" and secrets.api_key:
            return {settings.api_key_header: secrets.api_key}
        return {}

    # --- HTTP and cache ---

    def _cache_key(self, what: str, value: str) -> str:
        digest = hashlib.sha256(value.encode()).hexdigest()[:24]
        return f"crm:{self.context.tenant_id}:{self.context.connector_id}:{what}:{digest}"

    async def _cached(self, what: str, value: str) -> Any:
        try:
            raw = await self.context.cache.get(self._cache_key(what, value))
        except StoreUnavailable:
            return None  # the cache is an optimisation: without it, ask the CRM
        return orjson.loads(raw) if raw is not None else None

    async def _remember(self, what: str, value: str, payload: Any, default_ttl: float) -> None:
        ttl = self.settings.cache_ttl_seconds
        ttl = default_ttl if ttl is None else ttl
        if ttl > 0:
            with contextlib.suppress(StoreUnavailable):
                await self.context.cache.set(self._cache_key(what, value), orjson.dumps(payload), ttl=ttl)

    async def _get(self, path: str, *, not_found: str) -> Any:
        response = await self.context.downstream.request("GET", path, headers=self.auth_headers())
        self._raise_for_status(response, not_found=not_found)
        try:
            payload = response.json()
        except orjson.JSONDecodeError as exc:
            raise AppError(
                ErrorCode.UPSTREAM_ERROR, "The CRM answered with a body that is not JSON."
            ) from exc
        if self.settings.envelope:
            payload = dig(payload, self.settings.envelope)
        return payload

    def _raise_for_status(self, response: DownstreamResponse, *, not_found: str) -> None:
        if response.status == 404:
            raise AppError(ErrorCode.NOT_FOUND, not_found)
        if response.status == 429:
            retry_after = response.headers.get("Retry-After", "5")
            raise AppError(
                ErrorCode.UPSTREAM_UNAVAILABLE,
                "The CRM is rate limiting us; try again shortly.",
                headers={"Retry-After": retry_after if retry_after.isdigit() else "5"},
            )
        if response.status in (401, 403):
            raise AppError(ErrorCode.UPSTREAM_ERROR, f"The CRM refused our credentials ({response.status}).")
        if response.status >= 400:
            raise AppError(ErrorCode.UPSTREAM_ERROR, f"The CRM answered {response.status}.")

    # --- mapping ---

    def _path(self, mapping: dict[str, str], field: str) -> str:
        return mapping.get(field, field)

    def map_customer(self, payload: Any) -> Customer:
        if not isinstance(payload, dict):
            raise AppError(ErrorCode.UPSTREAM_ERROR, "The CRM answer for a customer is not an object.")
        fields = self.settings.customer_fields
        extra = {
            key: text
            for key, path in self.settings.customer_extra.items()
            if (text := as_text(dig(payload, path))) is not None
        }
        return Customer(
            id=required_text(payload, self._path(fields, "id"), system="CRM", what="customer"),
            name=as_text(dig(payload, self._path(fields, "name"))),
            email=as_text(dig(payload, self._path(fields, "email"))),
            phone=as_text(dig(payload, self._path(fields, "phone"))),
            balance=as_float(dig(payload, self._path(fields, "balance")), field="balance"),
            currency=as_text(dig(payload, self._path(fields, "currency"))),
            extra=extra,
        )

    def map_item(self, payload: Any) -> OrderItem | None:
        if not isinstance(payload, dict):
            return None
        fields = self.settings.item_fields
        name = as_text(dig(payload, self._path(fields, "name")))
        if name is None:
            return None
        return OrderItem(
            name=name,
            quantity=as_int(dig(payload, self._path(fields, "quantity")), field="quantity", default=1),
            price=as_float(dig(payload, self._path(fields, "price")), field="price"),
        )

    def map_order(self, payload: Any) -> Order:
        if not isinstance(payload, dict):
            raise AppError(ErrorCode.UPSTREAM_ERROR, "The CRM answer for an order is not an object.")
        fields = self.settings.order_fields
        raw_items = dig(payload, self._path(fields, "items"))
        items = (
            [item for raw in raw_items if (item := self.map_item(raw))] if isinstance(raw_items, list) else []
        )
        return Order(
            number=required_text(payload, self._path(fields, "number"), system="CRM", what="order"),
            status=required_text(payload, self._path(fields, "status"), system="CRM", what="order"),
            customer_id=as_text(dig(payload, self._path(fields, "customer_id"))),
            items=items,
            total=as_float(dig(payload, self._path(fields, "total")), field="total"),
            currency=as_text(dig(payload, self._path(fields, "currency"))),
            tracking_number=as_text(dig(payload, self._path(fields, "tracking_number"))),
            tracking_url=as_text(dig(payload, self._path(fields, "tracking_url"))),
            created_at=as_datetime(dig(payload, self._path(fields, "created_at")), field="created_at"),
            updated_at=as_datetime(dig(payload, self._path(fields, "updated_at")), field="updated_at"),
        )

    # --- the CRM operations ---

    default_cache_ttl: float = 30.0

    async def find_customer(self, lookup: CustomerLookup) -> Customer:
        what = f"customer_by_{lookup.by}"
        cached = await self._cached(what, lookup.value)
        if cached is not None:
            return Customer.model_validate(cached)
        template: str = getattr(self.settings.endpoints, what)
        payload = await self._get(
            render(template, **{lookup.by: lookup.value}), not_found=f"No customer with that {lookup.by}."
        )
        if isinstance(payload, list):
            if not payload:
                raise AppError(ErrorCode.NOT_FOUND, f"No customer with that {lookup.by}.")
            payload = payload[0]
        customer = self.map_customer(payload)
        await self._remember(what, lookup.value, customer.model_dump(mode="json"), self.default_cache_ttl)
        return customer

    async def customer_orders(self, customer_id: str) -> list[Order]:
        cached = await self._cached("customer_orders", customer_id)
        if cached is not None:
            return [Order.model_validate(item) for item in cached]
        payload = await self._get(
            render(self.settings.endpoints.customer_orders, id=customer_id), not_found="No such customer."
        )
        if not isinstance(payload, list):
            raise AppError(ErrorCode.UPSTREAM_ERROR, "The CRM answer for a customer's orders is not a list.")
        orders = [self.map_order(item) for item in payload]
        await self._remember(
            "customer_orders",
            customer_id,
            [order.model_dump(mode="json") for order in orders],
            self.default_cache_ttl,
        )
        return orders

    async def find_order(self, order_number: str) -> Order:
        cached = await self._cached("order", order_number)
        if cached is not None:
            return Order.model_validate(cached)
        payload = await self._get(
            render(self.settings.endpoints.order_by_number, number=order_number),
            not_found="No order with that number.",
        )
        if isinstance(payload, list):
            if not payload:
                raise AppError(ErrorCode.NOT_FOUND, "No order with that number.")
            payload = payload[0]
        order = self.map_order(payload)
        await self._remember("order", order_number, order.model_dump(mode="json"), self.default_cache_ttl)
        return order
