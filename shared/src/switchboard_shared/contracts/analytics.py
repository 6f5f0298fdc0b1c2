"""Contracts of the analytics service: the events every service emits, and batch ingestion.

The reports read these ``properties`` (everything else is stored and exported, but not interpreted).
Missing properties are tolerated: the metric that needs them simply does not count the event.

- ``conversation_started``: ``conversation_id``, ``end_user_id`` and ``channel`` on the event itself.
  The same end user starting another conversation within N days of this one's last activity is a
  *re-contact*: this conversation does not count as resolved by the bot.
- ``message_received`` (a customer message): ``conversation_id``, ``end_user_id``.
- ``answer_sent`` (a bot answer): ``message_id`` (str), ``latency_ms`` = ``{"retrieval": float,
  "generation": float, "total": float}`` (milliseconds), ``provider`` (str, the provider that answered),
  ``no_answer`` (bool: the bot said it does not know), ``question`` (str: the customer's question, needed
  for the unanswered-questions report; PII is redacted by analytics), ``sources`` (list of document ids
  cited by the answer), ``kb_ids`` (list: the knowledge bases the answer drew on, those of its passages,
  else those searched, ``ALL_KNOWLEDGE_BASES`` when that was all of the tenant's; the content-gap report).
- ``provider_fallback``: ``from_provider``, ``to_provider`` (str), ``error`` (short reason).
- ``tool_called``: ``tool`` (str), ``ok`` (bool).
- ``handoff``: ``reason`` (str, e.g. ``customer_request``, ``repeated_failure``, ``frustration``, ``rule``).
- ``feedback``: ``rating`` (``"up"`` | ``"down"``), ``message_id`` (the rated answer), ``sources``
  (document ids cited by the rated answer, so negative feedback can point at documents to fix),
  ``question`` (str: what the customer asked) and ``kb_ids`` (the rated answer's, as on ``answer_sent``).
- ``csat``: ``score`` (int 1..5; 1 and 2 count as negative feedback).
- ``conversation_resolved``: ``by`` (``"bot"`` | ``"human"``).
- ``operator_replied``, ``handoff_returned``, ``ticket_created`` (``ticket_id``, ``system``),
  ``search_performed`` (``latency_ms`` float, ``results`` int), ``ingestion_completed``, ``rate_limited``:
  counted by type.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, Field

from switchboard_shared.contracts.common import Contract

MAX_BATCH_EVENTS = 1000
NEGATIVE_CSAT_MAX = 2
FEEDBACK_RATINGS = ("up", "down")
LATENCY_PARTS = ("retrieval", "generation", "total")
# ``kb_ids`` of an answer drawn from no passage while the assistant searches every knowledge base.
ALL_KNOWLEDGE_BASES = "*"


class EventType(StrEnum):
    CONVERSATION_STARTED = "conversation_started"
    MESSAGE_RECEIVED = "message_received"
    ANSWER_SENT = "answer_sent"
    TOOL_CALLED = "tool_called"
    PROVIDER_FALLBACK = "provider_fallback"
    HANDOFF = "handoff"
    HANDOFF_RETURNED = "handoff_returned"
    OPERATOR_REPLIED = "operator_replied"
    FEEDBACK = "feedback"
    CSAT = "csat"
    CONVERSATION_RESOLVED = "conversation_resolved"
    TICKET_CREATED = "ticket_created"
    SEARCH_PERFORMED = "search_performed"
    INGESTION_COMPLETED = "ingestion_completed"
    RATE_LIMITED = "rate_limited"


class Event(Contract):
    """One analytics event; ``id`` makes ingestion idempotent."""

    id: str = Field(min_length=8, max_length=64)
    type: EventType
    tenant_id: str = Field(min_length=1, max_length=64)
    occurred_at: AwareDatetime
    source: str = Field(min_length=1, max_length=32, description="emitting service")
    conversation_id: str | None = None
    end_user_id: str | None = None
    channel: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)


class EventBatch(Contract):
    """Raw events: each is validated on its own so one bad event does not sink the batch."""

    events: list[dict[str, Any]] = Field(max_length=MAX_BATCH_EVENTS)


class EventRejection(Contract):
    index: int
    id: str | None = None
    error: str


class BatchResult(Contract):
    accepted: int
    duplicates: int
    rejected: list[EventRejection] = Field(default_factory=list)
    received_at: datetime
