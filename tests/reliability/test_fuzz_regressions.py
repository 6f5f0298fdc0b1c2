"""Regression tests for what schemathesis found (tests/reliability/test_fuzz.py), one per finding."""

from __future__ import annotations

import json

import httpx
import pytest

from .fleet import ReliabilityFleet, make_tenant

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]


def test_nul_character_in_a_knowledge_base_name(fleet: ReliabilityFleet) -> None:
    keys = make_tenant(fleet.gateway, "fuzz-regressions")
    response = httpx.post(
        f"{fleet.gateway}/v1/kbs",
        json={"name": "help\u0000centre", "description": "tab\u0000"},
        headers={"Authorization": f"Bearer {keys['server_key']}"},
        timeout=30,
    )
    assert response.status_code in (400, 422), (response.status_code, response.text)


def test_whatsapp_verification_documents_its_json_errors(fleet: ReliabilityFleet) -> None:
    document = httpx.get(f"{fleet.url('integrations')}/openapi.json", timeout=10).json()
    operation = document["paths"]["/internal/v1/channels/whatsapp/{phone_number_id}"]["get"]
    response = httpx.get(f"{fleet.gateway}/v1/channels/whatsapp/0", timeout=10)
    assert response.status_code == 404 and response.headers["content-type"].startswith("application/json")
    documented = operation["responses"].get("404", {}).get("content", {})
    assert "application/json" in documented, operation["responses"]


def test_huge_offset_is_refused(fleet: ReliabilityFleet) -> None:
    keys = make_tenant(fleet.gateway, "fuzz-regressions")
    response = httpx.get(
        f"{fleet.gateway}/v1/kbs",
        params={"limit": 10, "offset": 11115722118549345402880},
        headers={"Authorization": f"Bearer {keys['server_key']}"},
        timeout=30,
    )
    assert response.status_code in (200, 400, 422), (response.status_code, response.text)


def test_unconfigured_hosted_embedding_model_is_refused(fleet: ReliabilityFleet) -> None:
    keys = make_tenant(fleet.gateway, "fuzz-embeddings")
    headers = {"Authorization": f"Bearer {keys['server_key']}"}
    created = httpx.post(
        f"{fleet.gateway}/v1/kbs",
        json={"name": "hosted", "embedding_model": "google"},
        headers=headers,
        timeout=30,
    )
    search = httpx.post(f"{fleet.gateway}/v1/search", json={"query": "shipping"}, headers=headers, timeout=30)
    assert created.status_code in (400, 422) or search.status_code == 200, (created.text, search.text)


def test_lone_surrogate_in_an_openai_compatible_message_is_refused(fleet: ReliabilityFleet) -> None:
    keys = make_tenant(fleet.gateway, "fuzz-regressions")
    body = {"model": "switchboard", "messages": [{"role": "user", "content": "Where is \ud83d my order?"}]}
    response = httpx.post(
        f"{fleet.gateway}/v1/chat/completions",
        content=json.dumps(body).encode(),  # the surrogate travels as a valid "\ud83d" JSON escape
        headers={"Authorization": f"Bearer {keys['server_key']}", "content-type": "application/json"},
        timeout=60,
    )
    assert response.status_code == 400, (response.status_code, response.text)
