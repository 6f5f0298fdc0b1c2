"""The demo page's "sign in as demo customer": the gateway signs a widget identity token for one fixed
customer of the demo CRM with the demo tenant's identity secret, as a shop's backend would for its logged-in
user. Mounted only outside production; it signs no other user id."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from switchboard_gateway.auth.identity import sign_identity, verify_identity
from switchboard_gateway.settings import GatewaySettings
from switchboard_gateway.tenants import service
from switchboard_gateway.tenants.schemas import IdentityToken
from switchboard_shared.deps import SessionDep
from switchboard_shared.errors import error_responses
from switchboard_shared.settings import Environment

DEMO_TOKEN_TTL = 3600


def mount_demo_sign_in(app: FastAPI, settings: GatewaySettings) -> None:
    if settings.environment == Environment.PRODUCTION or not settings.demo_customer_id:
        return
    tenant_id, customer_id = settings.demo_tenant_id, settings.demo_customer_id
    router = APIRouter(tags=["demo"])

    @router.post(
        "/demo/identity-token",
        summary="Sign the demo customer in (demo and development set-ups only)",
        responses=error_responses(404),
    )
    async def demo_identity_token(session: SessionDep) -> IdentityToken:
        tenant = await service.get_or_404(session, tenant_id=tenant_id)
        token = sign_identity(tenant.identity_secret, customer_id, ttl_seconds=DEMO_TOKEN_TTL)
        expires_at = verify_identity(tenant.identity_secret, token).expires_at
        return IdentityToken(token=token, user_id=customer_id, expires_at=expires_at)

    app.include_router(router)
