"""The demo tenant of ``switchboard up``: tenant ``demo`` with a widget, a server and an admin key and its
identity-signing secret, made through the gateway's admin API.

Idempotent: the tenant is created once; keys are stored hashed and cannot be shown again, so each call
revokes the previous demo keys (by name) and issues fresh ones — the tenant always has exactly one of each.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

DEMO_TENANT = "demo"
KEY_NAMES = {"widget": "demo-widget", "server": "demo-server", "admin": "demo-admin"}


def _check(response: httpx.Response) -> dict[str, object] | list[dict[str, object]]:
    if response.status_code >= 400:
        raise RuntimeError(f"gateway answered {response.status_code}: {response.text[:300]}")
    body: dict[str, object] | list[dict[str, object]] = response.json()
    return body


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def bootstrap_demo(gateway_url: str, admin_token: str) -> dict[str, str]:
    base = gateway_url.rstrip("/")
    with httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {admin_token}"}, timeout=10.0
    ) as client:
        existing = client.get(f"/v1/admin/tenants/{DEMO_TENANT}")
        if existing.status_code == 404:
            _check(client.post("/v1/admin/tenants", json={"id": DEMO_TENANT, "name": "Demo shop"}))
        else:
            _check(existing)
        secret = _check(client.get(f"/v1/admin/tenants/{DEMO_TENANT}/identity-secret"))
        assert isinstance(secret, dict)
        keys = _check(client.get(f"/v1/admin/tenants/{DEMO_TENANT}/keys"))
        assert isinstance(keys, list)
        for key in keys:
            if key.get("name") in KEY_NAMES.values():
                _check(client.delete(f"/v1/admin/tenants/{DEMO_TENANT}/keys/{key['id']}"))
        origins = sorted({_origin(base), "http://localhost:*", "http://127.0.0.1:*"})
        result = {"tenant": DEMO_TENANT, "gateway_url": base}
        for scope, name in KEY_NAMES.items():
            body: dict[str, object] = {"scope": scope, "name": name}
            if scope == "widget":
                body["allowed_origins"] = origins
            created = _check(client.post(f"/v1/admin/tenants/{DEMO_TENANT}/keys", json=body))
            assert isinstance(created, dict)
            result[f"{scope}_key"] = str(created["key"])
        result["identity_secret"] = str(secret["identity_secret"])
        return result
