"""Tenant isolation, generated from the gateway's aggregated OpenAPI document: for every public operation,
another tenant's keys cannot read, change or infer the victim tenant's conversations, knowledge bases,
jobs, documents, tickets, events or keys. A new route is covered as soon as it appears in the document.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
import pytest

from .fleet import OPERATOR_TOKEN, ReliabilityFleet, retrying

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]

VICTIM_MARKER = "zebra-quartz-7731"  # appears only in the victim's messages and ticket
VICTIM_KB_TEXT = "two-year limited warranty"  # only in the victim's knowledge base (tests ingest it later)
SENT_SO_FAR: list[str] = []  # what the attacker sent, over both scopes (its own stored data)
METHODS = ("get", "post", "put", "patch", "delete")


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def resolve_ref(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    return schema


def example(schema: dict[str, Any], components: dict[str, Any], ids: dict[str, str], name: str = "") -> Any:
    """A small valid value for a JSON schema; fields that name a resource get the victim's id."""
    schema = resolve_ref(schema, components)
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in schema:
            options = [o for o in schema[combinator] if resolve_ref(o, components).get("type") != "null"]
            return example(options[0] if options else schema[combinator][0], components, ids, name)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type", "object")
    if kind == "object":
        props = schema.get("properties", {})
        required = set(schema.get("required", []))
        chosen = {
            k for k in props if k in required or (k.endswith(("_id", "_ids")) and victim_id_for(k, ids))
        }
        return {k: example(props[k], components, ids, k) for k in chosen}
    if kind == "array":
        return [example(schema.get("items", {}), components, ids, name)]
    if kind == "integer":
        return max(int(schema.get("minimum", 1)), 1)
    if kind == "number":
        return float(schema.get("minimum", 1))
    if kind == "boolean":
        return False
    victim = victim_id_for(name, ids) if name.endswith(("_id", "_ids")) else None
    if victim:
        return victim
    if schema.get("format") == "date":
        return "2026-01-01"
    if schema.get("format") == "date-time":
        return "2026-01-01T00:00:00Z"
    if name == "email":
        return "someone@example.com"
    return "x" * max(int(schema.get("minLength", 1)), 1)


def victim_id_for(name: str, ids: dict[str, str]) -> str | None:
    lowered = name.lower()
    for stem, value in ids.items():
        if stem in lowered:
            return value
    return None


@pytest.fixture(scope="module")
def victim(fleet: ReliabilityFleet) -> dict[str, str]:
    """The demo tenant's resources, made through its own server key."""
    headers = {**bearer(fleet.demo["server_key"]), "X-End-User-ID": "victim-customer"}
    with httpx.Client(base_url=fleet.gateway, headers=headers, timeout=60.0) as client:
        conversation = retrying(client, "POST", "/v1/conversations", json={"end_user_id": "victim-customer"})
        assert conversation.status_code in (200, 201), conversation.text
        conversation_id = conversation.json()["id"]
        turn = retrying(
            client,
            "POST",
            f"/v1/conversations/{conversation_id}/messages",
            json={"text": f"My secret word is {VICTIM_MARKER}. How long does shipping take?"},
        )
        assert turn.status_code == 200, turn.text
        listed = {}
        for name, path in (
            ("documents", f"/v1/kbs/{fleet.kb_id}/documents"),
            ("sources", f"/v1/kbs/{fleet.kb_id}/sources"),
            ("jobs", "/v1/jobs"),
        ):
            response = retrying(client, "GET", path)
            assert response.status_code == 200, (path, response.status_code, response.text[:300])
            body = response.json()
            listed[name] = body["items"] if isinstance(body, dict) else body
        items, source_items, job_items = listed["documents"], listed["sources"], listed["jobs"]
        ticket = client.post(
            "/v1/tickets",
            json={
                "conversation_id": conversation_id,
                "subject": f"Victim ticket {VICTIM_MARKER}",
                "idempotency_key": uuid.uuid4().hex,
            },
        )
        connectors = client.get("/v1/connectors").json()
    keys = httpx.get(
        f"{fleet.gateway}/v1/admin/tenants/demo/keys", headers=bearer(OPERATOR_TOKEN), timeout=10
    ).json()
    ids = {
        "conversation": conversation_id,
        "message": turn.json()["user_message"]["id"],
        "kb": fleet.kb_id,
        "document": items[0]["id"],
        "doc": items[0]["id"],
        "source": source_items[0]["id"],
        "job": job_items[0]["id"],
        "key": next(k["id"] for k in keys if k["revoked_at"] is None),
        "tenant": "demo",
    }
    if ticket.status_code in (200, 201):
        ids["ticket"] = ticket.json()["id"]
    connector_items = connectors if isinstance(connectors, list) else connectors.get("items", [])
    if connector_items:
        ids["connector"] = connector_items[0]["id"]
    return ids


def operations(fleet: ReliabilityFleet) -> tuple[list[tuple[str, str, dict[str, Any]]], dict[str, Any]]:
    document = httpx.get(f"{fleet.gateway}/openapi.json", timeout=10).json()
    ops = []
    for path, item in document["paths"].items():
        if not path.startswith("/v1/") or path.startswith("/v1/channels/"):
            continue  # webhooks carry no API key; the signature tests cover them
        for method in METHODS:
            if method in item:
                ops.append((method.upper(), path, item[method]))
    return ops, document.get("components", {}).get("schemas", {})


def fill_path(path: str, ids: dict[str, str], *, fake: bool) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("tenant"):
            return "demo" if not fake else "no-such-tenant"
        victim = victim_id_for(name, ids)
        if fake or victim is None:
            return uuid.uuid4().hex
        return victim

    return re.sub(r"\{([^}]+)\}", replace, path)


def test_openapi_covers_every_area(fleet: ReliabilityFleet) -> None:
    ops, _ = operations(fleet)
    areas = {path.split("/")[2] for _, path, _ in ops}
    assert {"conversations", "kbs", "jobs", "search", "tickets", "handoffs", "analytics", "admin"} <= areas, (
        areas
    )
    assert len(ops) >= 40, len(ops)


@pytest.mark.parametrize("scope", ["admin", "server"])
def test_other_tenant_cannot_read_change_or_infer(
    fleet: ReliabilityFleet, victim: dict[str, str], scope: str
) -> None:
    ops, components = operations(fleet)
    attacker = bearer(fleet.other[f"{scope}_key"])
    secrets = {value for key, value in victim.items() if key not in ("tenant",)} | {
        VICTIM_MARKER,
        VICTIM_KB_TEXT,
    }
    failures: list[str] = []
    with httpx.Client(base_url=fleet.gateway, timeout=60.0) as client:
        for method, path, operation in ops:
            body = None
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                body = example(content["application/json"]["schema"], components, victim)
            params = {
                p["name"]: example(p.get("schema", {}), components, victim, p["name"])
                for p in operation.get("parameters", [])
                if p.get("in") == "query" and (p.get("required") or victim_id_for(p["name"], victim))
            }
            target = fill_path(path, victim, fake=False)
            real = client.request(method, target, headers=attacker, json=body, params=params)
            text = real.text
            SENT_SO_FAR.append(target + json.dumps(body) + json.dumps(params))
            sent_so_far = "".join(SENT_SO_FAR)
            # An id this attacker itself sent (now or in an earlier request, e.g. stored in its own
            # assistant settings) may come back; the victim's content and any other id may not.
            leaked = sorted(s for s in secrets if s in text and s not in sent_so_far)
            if leaked:
                failures.append(f"{method} {path}: {real.status_code} leaks {leaked}")
            if "{" in path:
                if 200 <= real.status_code < 300:
                    failures.append(f"{method} {path}: {real.status_code} on the victim's resource")
                fake = client.request(
                    method, fill_path(path, victim, fake=True), headers=attacker, json=body, params=params
                )
                if fake.status_code != real.status_code:
                    failures.append(
                        f"{method} {path}: {real.status_code} for the victim's id but {fake.status_code} "
                        "for an unknown one (existence can be inferred)"
                    )
            if real.status_code >= 500:
                failures.append(f"{method} {path}: {real.status_code} {text[:200]}")
    assert not failures, "\n".join(failures)


def test_victim_state_unchanged(fleet: ReliabilityFleet, victim: dict[str, str]) -> None:
    headers = bearer(fleet.demo["server_key"])
    conversation = httpx.get(f"{fleet.gateway}/v1/conversations/{victim['conversation']}", headers=headers)
    assert conversation.status_code == 200
    assert any(VICTIM_MARKER in m["text"] for m in conversation.json()["messages"])
    kb = httpx.get(f"{fleet.gateway}/v1/kbs/{victim['kb']}", headers=headers)
    assert kb.status_code == 200 and kb.json()["document_count"] >= 4
    keys = httpx.get(f"{fleet.gateway}/v1/admin/tenants/demo/keys", headers=bearer(OPERATOR_TOKEN)).json()
    assert any(k["id"] == victim["key"] and k["revoked_at"] is None for k in keys)
