"""One OpenAPI document for the whole public API: the gateway's own endpoints plus each upstream's
``/internal/v1/<area>`` operations of the areas it owns, rewritten to ``/v1``; fetched and cached."""

from __future__ import annotations

import asyncio
import copy
import time
from typing import Any

import aiohttp
import orjson
import structlog

from switchboard_gateway.proxy.upstreams import Upstreams
from switchboard_shared.contracts.routes import (
    END_USER_CLAIMS_HEADER,
    END_USER_HEADER,
    END_USER_VERIFIED_HEADER,
    KEY_SCOPE_HEADER,
    PUBLIC_AREA_OWNERS,
    TENANT_HEADER,
    WEBHOOK_AREAS,
)

log = structlog.get_logger(__name__)
GATEWAY_SET_HEADERS = frozenset(
    name.lower()
    for name in (
        TENANT_HEADER,
        END_USER_HEADER,
        END_USER_VERIFIED_HEADER,
        END_USER_CLAIMS_HEADER,
        KEY_SCOPE_HEADER,
        "X-Internal-Token",
    )
)
FETCH_TIMEOUT = aiohttp.ClientTimeout(total=3.0)
SECURITY_SCHEMES = {
    "ApiKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "pk_ (widget), sk_ (server), ak_ (admin) key",
    },
    "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}


def _rewrite_refs(node: Any, renames: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/components/schemas/"):
                name = value.rsplit("/", 1)[1]
                out[key] = f"#/components/schemas/{renames.get(name, name)}"
            else:
                out[key] = _rewrite_refs(value, renames)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(item, renames) for item in node]
    return node


def _owned_area(path: str, service: str) -> str | None:
    if not path.startswith("/internal/v1/"):
        return None
    area = path[len("/internal/v1/") :].split("/", 1)[0]
    return area if PUBLIC_AREA_OWNERS.get(area) == service else None


def merge_documents(own: dict[str, Any], upstream_docs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Merge upstream documents into the gateway's own (pure: the inputs are not modified)."""
    merged = copy.deepcopy(own)
    paths: dict[str, Any] = merged.setdefault("paths", {})
    schemas: dict[str, Any] = merged.setdefault("components", {}).setdefault("schemas", {})
    operation_ids = {
        op.get("operationId") for item in paths.values() for op in item.values() if isinstance(op, dict)
    }
    for service, doc in sorted(upstream_docs.items()):
        their_schemas = doc.get("components", {}).get("schemas", {})
        renames = {
            name: f"{service}__{name}"
            for name, schema in their_schemas.items()
            if name in schemas and schemas[name] != schema
        }
        for name, schema in their_schemas.items():
            schemas[renames.get(name, name)] = _rewrite_refs(schema, renames)
        for path, item in doc.get("paths", {}).items():
            area = _owned_area(path, service)
            if area is None:
                continue
            public_item: dict[str, Any] = {}
            for method, operation in _rewrite_refs(item, renames).items():
                if not isinstance(operation, dict):
                    public_item[method] = operation
                    continue
                operation["parameters"] = [
                    p
                    for p in operation.get("parameters", [])
                    if not (p.get("in") == "header" and str(p.get("name", "")).lower() in GATEWAY_SET_HEADERS)
                ]
                if not operation["parameters"]:
                    del operation["parameters"]
                op_id = operation.get("operationId")
                if op_id in operation_ids:
                    operation["operationId"] = f"{service}__{op_id}"
                operation_ids.add(operation.get("operationId"))
                operation.setdefault("tags", [service])
                operation["security"] = (
                    [] if area in WEBHOOK_AREAS else [{"ApiKey": []}, {"ApiKeyHeader": []}]
                )
                public_item[method] = operation
            paths["/v1/" + path[len("/internal/v1/") :]] = public_item
    merged.setdefault("components", {}).setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
    return merged


class OpenAPIAggregator:
    def __init__(self, upstreams: Upstreams, *, cache_seconds: float) -> None:
        self.upstreams = upstreams
        self.cache_seconds = cache_seconds
        self._cached: tuple[float, dict[str, Any]] | None = None
        self._lock = asyncio.Lock()

    async def _fetch(self, name: str) -> dict[str, Any] | None:
        upstream = self.upstreams[name]
        try:
            async with upstream.session.get(
                f"{upstream.base_url}/openapi.json", timeout=FETCH_TIMEOUT
            ) as resp:
                if resp.status != 200:
                    return None
                doc: dict[str, Any] = orjson.loads(await resp.read())
                return doc
        except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as exc:
            log.info("openapi_fetch_failed", upstream=name, error=type(exc).__name__)
            return None

    async def document(self, own: dict[str, Any]) -> dict[str, Any]:
        async with self._lock:
            now = time.monotonic()
            if self._cached is not None and self._cached[0] > now:
                return self._cached[1]
            services = sorted(set(PUBLIC_AREA_OWNERS.values()))
            fetched = await asyncio.gather(*(self._fetch(name) for name in services))
            docs = {name: doc for name, doc in zip(services, fetched, strict=True) if doc is not None}
            merged = merge_documents(own, docs)
            missing = [name for name in services if name not in docs]
            merged.setdefault("info", {})["x-switchboard-missing-services"] = missing
            # A partial document is cached briefly so a service coming up shows soon.
            ttl = self.cache_seconds if not missing else min(self.cache_seconds, 5.0)
            self._cached = (now + ttl, merged)
            return merged
