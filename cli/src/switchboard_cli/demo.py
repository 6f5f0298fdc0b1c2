"""The demo tenant of ``switchboard up``: tenant ``demo`` with a widget, a server and an admin key and its
identity-signing secret, made through the gateway's admin API.

Idempotent: the tenant is created once and always has exactly one key of each scope. Keys are stored
hashed by the gateway and cannot be shown again, so ``switchboard up`` keeps the ones it issued in a file
of its data directory (mode 0600): while they are still the tenant's active demo keys they are reused — a
widget snippet or a script written against one run keeps working after a restart — and otherwise the
previous demo keys are revoked (by name) and fresh ones issued.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import urlsplit

import httpx

DEMO_TENANT = "demo"
KEY_NAMES = {"widget": "demo-widget", "server": "demo-server", "admin": "demo-admin"}
DISPLAY_CHARS = 10  # the gateway lists each key by its first characters
DEMO_GREETING = {
    "en": "Hi! I'm the Demo shop assistant. Ask me about delivery, returns or payment; once you are signed "
    "in, I can also tell you where your order is (try A-1001).",
    "ru": "Здравствуйте! Я ассистент магазина Demo shop. Спросите о доставке, возврате или оплате, а после "
    "входа подскажу, где ваш заказ (например, A-1001).",
}


def _check(response: httpx.Response) -> dict[str, object] | list[dict[str, object]]:
    if response.status_code >= 400:
        raise RuntimeError(f"gateway answered {response.status_code}: {response.text[:300]}")
    body: dict[str, object] | list[dict[str, object]] = response.json()
    return body


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _saved(
    keys_file: Path | None, active: list[dict[str, object]], origins: list[str]
) -> dict[str, str] | None:
    """The saved keys when each is still the tenant's one active demo key of its scope (and the widget key
    still allows the gateway's origins)."""
    if keys_file is None or not keys_file.is_file():
        return None
    try:
        saved = json.loads(keys_file.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict):
        return None
    for scope, name in KEY_NAMES.items():
        key = saved.get(f"{scope}_key")
        matching = [k for k in active if k.get("name") == name and not k.get("revoked_at")]
        if not isinstance(key, str) or len(matching) != 1 or matching[0].get("prefix") != key[:DISPLAY_CHARS]:
            return None
        allowed = matching[0].get("allowed_origins")
        if scope == "widget" and not (isinstance(allowed, list) and set(origins) <= set(allowed)):
            return None
    return {str(k): str(v) for k, v in saved.items()}


def _save(keys_file: Path, keys: dict[str, str]) -> None:
    keys_file.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(keys_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump({k: v for k, v in keys.items() if k.endswith("_key")}, handle)


def bootstrap_demo(gateway_url: str, admin_token: str, keys_file: Path | None = None) -> dict[str, str]:
    """The demo tenant and its keys; with ``keys_file``, the keys of an earlier run are reused when valid."""
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
        origins = sorted({_origin(base), "http://localhost:*", "http://127.0.0.1:*"})
        result = {"tenant": DEMO_TENANT, "gateway_url": base}
        reused = _saved(keys_file, keys, origins)
        if reused is not None:
            return {**result, **reused, "identity_secret": str(secret["identity_secret"])}
        for key in keys:
            if key.get("name") in KEY_NAMES.values():
                _check(client.delete(f"/v1/admin/tenants/{DEMO_TENANT}/keys/{key['id']}"))
        for scope, name in KEY_NAMES.items():
            body: dict[str, object] = {"scope": scope, "name": name}
            if scope == "widget":
                body["allowed_origins"] = origins
            created = _check(client.post(f"/v1/admin/tenants/{DEMO_TENANT}/keys", json=body))
            assert isinstance(created, dict)
            result[f"{scope}_key"] = str(created["key"])
        if keys_file is not None:
            _save(keys_file, result)
        result["identity_secret"] = str(secret["identity_secret"])
        return result


def set_demo_greeting(base: str, admin_key: str) -> None:
    """The demo assistant's greeting (what the widget opens with and each conversation starts with), unless
    the tenant set its own. Best effort: the widget shows its built-in greeting when this fails."""
    try:
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {admin_key}"}, timeout=10.0
        ) as api:
            current = api.get("/v1/assistant")
            if current.status_code != 200 or current.json().get("greeting"):
                return
            api.put("/v1/assistant", json={**current.json(), "greeting": DEMO_GREETING})
    except (httpx.HTTPError, ValueError):
        return
