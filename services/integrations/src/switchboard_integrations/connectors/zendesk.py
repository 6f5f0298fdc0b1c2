"""Zendesk Support API connector: tickets with requester, transcript, tags and priority; comments;
status; and Zendesk's signed webhooks (``X-Zendesk-Webhook-Signature``) for agent replies and status."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import Field

from switchboard_integrations.connectors.base import (
    ExternalTicket,
    PluginSettings,
    TicketConnector,
    TicketEvent,
    TicketSecrets,
    register,
)
from switchboard_integrations.connectors.signatures import check_base64_signature
from switchboard_integrations.connectors.transcript import plain_text
from switchboard_shared.contracts.integrations import CreateTicket, TicketSystem
from switchboard_shared.errors import AppError, ErrorCode

SIGNATURE_HEADER = "X-Zendesk-Webhook-Signature"
TIMESTAMP_HEADER = "X-Zendesk-Webhook-Signature-Timestamp"
COMMENT_ADDED = "zen:event-type:ticket.comment_added"
STATUS_CHANGED = "zen:event-type:ticket.status_changed"


class ZendeskSettings(PluginSettings):
    base_url: str = Field(
        pattern=r"^https?://", max_length=500, description="https://<subdomain>.zendesk.com"
    )
    email: str = Field(min_length=3, max_length=200, description="Agent email for API-token auth")
    group_id: int | None = None
    tags: list[str] = Field(default_factory=list, description="Tags added to every ticket")
    timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    webhook_tolerance_seconds: int = Field(default=600, ge=0, description="0: no timestamp check")


class ZendeskSecrets(TicketSecrets):
    webhook_secret: str | None = Field(default=None, description="Signing secret of the Zendesk webhook")


@register
class ZendeskConnector(TicketConnector):
    kind = "zendesk"
    system = TicketSystem.ZENDESK
    settings_model = ZendeskSettings
    secrets_model = ZendeskSecrets
    system_name = "Zendesk"
    webhook_secret_name = "webhook signing secret"
    closed_statuses = frozenset({"solved", "closed"})
    settings: ZendeskSettings

    def auth_headers(self) -> dict[str, str]:
        raw = f"{self.settings.email}/token:{self.secrets.api_token}".encode()
        return {"Authorization": f"Basic {base64.b64encode(raw).decode()}"}

    async def create_ticket(self, request: CreateTicket, *, idempotency_key: str) -> ExternalTicket:
        ticket: dict[str, Any] = {
            "subject": request.subject,
            "comment": {"body": plain_text(request), "public": True},
            "priority": request.priority,
            "tags": sorted({*self.settings.tags, *request.tags, "switchboard"}),
        }
        if request.requester.email:
            ticket["requester"] = {
                "name": request.requester.name or request.requester.email,
                "email": request.requester.email,
            }
        if request.conversation_id:
            ticket["external_id"] = request.conversation_id
        if self.settings.group_id is not None:
            ticket["group_id"] = self.settings.group_id
        payload = await self.call_api(
            "POST",
            "/api/v2/tickets.json",
            what="ticket creation",
            json={"ticket": ticket},
            headers={"Idempotency-Key": idempotency_key},
            # Zendesk honours Idempotency-Key on ticket creation, so a retry cannot make two tickets.
            idempotent=True,
        )
        created = payload.get("ticket") if isinstance(payload, dict) else None
        if not isinstance(created, dict) or "id" not in created:
            raise AppError(ErrorCode.UPSTREAM_ERROR, "Zendesk's answer has no ticket id.")
        ticket_id = str(created["id"])
        requester = created.get("requester_id")
        return ExternalTicket(
            external_id=ticket_id,
            url=f"{self.settings.base_url.rstrip('/')}/agent/tickets/{ticket_id}",
            status=str(created.get("status") or "new"),
            requester_external_id=str(requester) if requester is not None else None,
        )

    async def add_comment(self, external_id: str, text: str, *, author_id: str | None = None) -> str | None:
        comment: dict[str, Any] = {"body": text, "public": True}
        if author_id is not None and author_id.isdigit():
            comment["author_id"] = int(author_id)
        payload = await self.call_api(
            "PUT",
            f"/api/v2/tickets/{external_id}.json",
            what="ticket",
            json={"ticket": {"comment": comment}},
            idempotent=False,
        )
        events = (payload.get("audit") or {}).get("events", []) if isinstance(payload, dict) else []
        for event in events:
            if isinstance(event, dict) and event.get("type") == "Comment" and "id" in event:
                return str(event["id"])
        return None

    async def get_status(self, external_id: str) -> str:
        payload = await self.call_api("GET", f"/api/v2/tickets/{external_id}.json", what="ticket")
        status = (payload.get("ticket") or {}).get("status") if isinstance(payload, dict) else None
        if not status:
            raise AppError(ErrorCode.UPSTREAM_ERROR, "Zendesk's answer has no ticket status.")
        return str(status).lower()

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> None:
        secret = self.webhook_secret()
        timestamp = headers.get(TIMESTAMP_HEADER)
        if not timestamp:
            raise AppError(ErrorCode.UNAUTHORIZED, f"The {TIMESTAMP_HEADER} header is missing.")
        check_base64_signature(
            headers.get(SIGNATURE_HEADER),
            secret=secret,
            message=timestamp.encode() + body,
            header=SIGNATURE_HEADER,
        )
        tolerance = self.settings.webhook_tolerance_seconds
        if tolerance:
            try:
                sent = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
            except ValueError as exc:
                raise AppError(ErrorCode.UNAUTHORIZED, f"The {TIMESTAMP_HEADER} is not a timestamp.") from exc
            sent = sent if sent.tzinfo else sent.replace(tzinfo=UTC)
            if abs((datetime.now(UTC) - sent).total_seconds()) > tolerance:
                raise AppError(ErrorCode.FORBIDDEN, "The webhook timestamp is too old (replay refused).")

    def parse_webhook(self, headers: Mapping[str, str], payload: Any) -> TicketEvent:  # noqa: ARG002
        if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
            raise AppError(ErrorCode.BAD_REQUEST, "Not a Zendesk event webhook body (no 'type').")
        detail = payload.get("detail")
        event = payload.get("event")
        if not isinstance(detail, dict) or detail.get("id") is None or not isinstance(event, dict):
            raise AppError(ErrorCode.BAD_REQUEST, "A Zendesk ticket event needs 'detail.id' and 'event'.")
        event_id = str(payload.get("id") or hashlib.sha256(repr(payload).encode()).hexdigest()[:32])
        result = TicketEvent(
            event_id=event_id, external_ticket_id=str(detail["id"]), raw_type=str(payload["type"])
        )
        if payload["type"] == COMMENT_ADDED:
            comment = event.get("comment")
            if not isinstance(comment, dict) or not isinstance(comment.get("body"), str):
                raise AppError(ErrorCode.BAD_REQUEST, "A comment_added event needs 'event.comment.body'.")
            raw_author = comment.get("author")
            author: dict[str, Any] = raw_author if isinstance(raw_author, dict) else {}
            result.comment_id = str(comment.get("id")) if comment.get("id") is not None else event_id
            result.comment_text = comment["body"]
            result.comment_public = comment.get("is_public", True) is not False
            result.comment_author_id = str(author["id"]) if author.get("id") is not None else None
            result.comment_author_name = author.get("name") if isinstance(author.get("name"), str) else None
        elif payload["type"] == STATUS_CHANGED:
            current = event.get("current")
            if not isinstance(current, str):
                raise AppError(ErrorCode.BAD_REQUEST, "A status_changed event needs 'event.current'.")
            result.status = current.lower()
        return result
