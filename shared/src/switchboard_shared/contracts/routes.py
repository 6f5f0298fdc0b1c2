"""How the public API maps onto the fleet: the gateway forwards ``/v1/<area>/...`` to the owning service's
``/internal/v1/<area>/...`` with the same method, sub-path, query and body.

Every internal route takes the caller's identity from headers the gateway (or the calling service) sets,
never from the body: ``X-Tenant-ID`` (required), ``X-End-User-ID`` and ``X-End-User-Verified: 1`` for a
widget user whose HMAC identity token checked out (with ``X-End-User-Claims``: the token's CRM claims), and
``X-Key-Scope`` (widget, server, admin).
"""

from __future__ import annotations

TENANT_HEADER = "X-Tenant-ID"
END_USER_HEADER = "X-End-User-ID"
END_USER_VERIFIED_HEADER = "X-End-User-Verified"
KEY_SCOPE_HEADER = "X-Key-Scope"
# The verified identity token's claims naming the customer in the CRM (``email``, ``crm_id``), as base64url
# JSON; set only by the gateway, only beside ``X-End-User-Verified: 1``.
END_USER_CLAIMS_HEADER = "X-End-User-Claims"
# Values of ``X-Key-Scope``: a widget key is public (a browser holds it); server and admin keys are the
# tenant's own secrets.
WIDGET_SCOPE = "widget"
TENANT_SECRET_SCOPES = frozenset({"server", "admin"})

PUBLIC_AREA_OWNERS: dict[str, str] = {
    "conversations": "chat",
    "assistant": "chat",
    "kbs": "retrieval",
    "jobs": "retrieval",
    "search": "retrieval",
    "curated": "retrieval",
    "handoffs": "integrations",
    "tickets": "integrations",
    "connectors": "integrations",
    "channels": "integrations",
    "analytics": "analytics",
}

# Areas a widget key may reach (besides the gateway's own chat endpoints).
WIDGET_AREAS = frozenset({"conversations"})
# Public webhook areas: no API key; the owning service verifies the sender's signature or secret.
WEBHOOK_AREAS = frozenset({"channels"})
