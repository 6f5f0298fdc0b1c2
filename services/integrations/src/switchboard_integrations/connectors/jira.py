"""Jira Cloud REST v3 connector: issues in a configured project and issue type with the transcript as an
ADF description, comments, status; webhooks signed with the admin webhook secret (``X-Hub-Signature``)."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Mapping
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
from switchboard_integrations.connectors.signatures import check_hex_signature
from switchboard_integrations.connectors.transcript import adf_comment, adf_document, adf_to_text
from switchboard_shared.contracts.integrations import CreateTicket, TicketSystem
from switchboard_shared.errors import AppError, ErrorCode

SIGNATURE_HEADER = "X-Hub-Signature"
FUTURE_SKEW_SECONDS = 300
PRIORITY_NAMES = {"low": "Low", "normal": "Medium", "high": "High", "urgent": "Highest"}


class JiraSettings(PluginSettings):
    base_url: str = Field(pattern=r"^https?://", max_length=500, description="https://<site>.atlassian.net")
    email: str = Field(min_length=3, max_length=200, description="Account email for API-token auth")
    project_key: str = Field(min_length=1, max_length=20)
    issue_type: str = Field(default="Task", max_length=100)
    set_priority: bool = Field(default=True, description="Send a priority (the screen must allow it)")
    timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    webhook_max_age_seconds: int = Field(
        default=86_400,
        ge=60,
        le=7 * 86_400,
        description="Oldest webhook accepted, by its signed 'timestamp' (within the dedup memory of 7 days)",
    )


class JiraSecrets(TicketSecrets):
    """The API token of ``settings.email`` and the secret of the admin webhook."""


def _label(tag: str) -> str:
    return "-".join(tag.split())[:255]


@register
class JiraConnector(TicketConnector):
    kind = "jira"
    system = TicketSystem.JIRA
    settings_model = JiraSettings
    secrets_model = JiraSecrets
    system_name = "Jira"
    closed_statuses = frozenset({"done", "closed", "resolved"})
    settings: JiraSettings

    def auth_headers(self) -> dict[str, str]:
        raw = f"{self.settings.email}:{self.secrets.api_token}".encode()
        return {"Authorization": f"Basic {base64.b64encode(raw).decode()}", "Accept": "application/json"}

    async def create_ticket(self, request: CreateTicket, *, idempotency_key: str) -> ExternalTicket:
        fields: dict[str, Any] = {
            "project": {"key": self.settings.project_key},
            "issuetype": {"name": self.settings.issue_type},
            "summary": request.subject[:255],
            "description": adf_document(request),
            "labels": sorted({_label(tag) for tag in [*request.tags, "switchboard"] if tag.strip()}),
        }
        if self.settings.set_priority:
            fields["priority"] = {"name": PRIORITY_NAMES[request.priority]}
        body = {
            "fields": fields,
            # Recorded on the issue so an operator can find the issue a given request created.
            "properties": [
                {
                    "key": "switchboard",
                    "value": {
                        "idempotency_key": idempotency_key,
                        "conversation_id": request.conversation_id,
                        "requester_email": request.requester.email,
                    },
                }
            ],
        }
        payload = await self.call_api(
            "POST", "/rest/api/3/issue", what="issue creation", json=body, idempotent=False
        )
        if not isinstance(payload, dict) or not payload.get("key"):
            raise AppError(ErrorCode.UPSTREAM_ERROR, "Jira's answer has no issue key.")
        key = str(payload["key"])
        return ExternalTicket(
            external_id=key, url=f"{self.settings.base_url.rstrip('/')}/browse/{key}", status="open"
        )

    async def add_comment(self, external_id: str, text: str, *, author_id: str | None = None) -> str | None:  # noqa: ARG002
        payload = await self.call_api(
            "POST",
            f"/rest/api/3/issue/{external_id}/comment",
            what="issue",
            json={"body": adf_comment(text)},
            idempotent=False,
        )
        return str(payload["id"]) if isinstance(payload, dict) and payload.get("id") is not None else None

    async def get_status(self, external_id: str) -> str:
        payload = await self.call_api(
            "GET", f"/rest/api/3/issue/{external_id}", what="issue", params={"fields": "status"}
        )
        status = ((payload.get("fields") or {}).get("status") or {}) if isinstance(payload, dict) else {}
        name = status.get("name") if isinstance(status, dict) else None
        if not name:
            raise AppError(ErrorCode.UPSTREAM_ERROR, "Jira's answer has no issue status.")
        return str(name).lower()

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> None:
        check_hex_signature(
            headers.get(SIGNATURE_HEADER), secret=self.webhook_secret(), body=body, header=SIGNATURE_HEADER
        )

    def _check_fresh(self, timestamp: Any) -> None:
        """Jira signs the body, and the body's ``timestamp`` (ms since the epoch) says when the event
        happened: an old signed body replayed later is refused."""
        if type(timestamp) is not int:
            raise AppError(ErrorCode.BAD_REQUEST, "A Jira webhook body needs an integer 'timestamp'.")
        age = time.time() - timestamp / 1000
        if age > self.settings.webhook_max_age_seconds:
            raise AppError(ErrorCode.FORBIDDEN, "The webhook event is too old (replay refused).")
        if age < -FUTURE_SKEW_SECONDS:
            raise AppError(ErrorCode.FORBIDDEN, "The webhook event is dated in the future (refused).")

    def parse_webhook(self, headers: Mapping[str, str], payload: Any) -> TicketEvent:  # noqa: ARG002
        if not isinstance(payload, dict) or not isinstance(payload.get("webhookEvent"), str):
            raise AppError(ErrorCode.BAD_REQUEST, "Not a Jira webhook body (no 'webhookEvent').")
        issue = payload.get("issue")
        if not isinstance(issue, dict) or not issue.get("key"):
            raise AppError(ErrorCode.BAD_REQUEST, "A Jira webhook body needs 'issue.key'.")
        self._check_fresh(payload.get("timestamp"))
        # The event's identity from the signed body only: the identifier header is not signed.
        comment = payload.get("comment")
        changelog = payload.get("changelog")
        parts = [
            payload["timestamp"],
            payload["webhookEvent"],
            issue.get("id") or issue["key"],
            comment.get("id") if isinstance(comment, dict) else None,
            changelog.get("id") if isinstance(changelog, dict) else None,
        ]
        event_id = "jira:" + hashlib.sha256(repr(parts).encode()).hexdigest()[:40]
        result = TicketEvent(
            event_id=event_id, external_ticket_id=str(issue["key"]), raw_type=payload["webhookEvent"]
        )
        if payload["webhookEvent"] == "comment_created":
            if not isinstance(comment, dict) or comment.get("body") is None:
                raise AppError(ErrorCode.BAD_REQUEST, "A comment_created event needs 'comment.body'.")
            raw_author = comment.get("author")
            author: dict[str, Any] = raw_author if isinstance(raw_author, dict) else {}
            result.comment_id = str(comment.get("id")) if comment.get("id") is not None else None
            result.comment_text = adf_to_text(comment["body"]).strip()
            result.comment_public = comment.get("jsdPublic", True) is not False
            result.comment_author_id = author.get("accountId")
            result.comment_author_name = author.get("displayName")
        items = changelog.get("items") if isinstance(changelog, dict) else None
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and item.get("field") == "status" and item.get("toString"):
                result.status = str(item["toString"]).lower()
        return result
