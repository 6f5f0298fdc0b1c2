"""CSV export of events and conversations, streamed page by page (one short DB session per page)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from switchboard_analytics.events.models import ConversationFactRow
from switchboard_analytics.exports import repository
from switchboard_analytics.reports.service import Report
from switchboard_shared.redaction import tenant_pseudonym

PAGE = 2000
EVENT_COLUMNS = [
    "event_id",
    "type",
    "occurred_at",
    "received_at",
    "source",
    "conversation_id",
    "end_user_id",
    "channel",
    "properties",
]
CONVERSATION_COLUMNS = [
    "conversation_id",
    "end_user_id",
    "channel",
    "started_at",
    "last_activity_at",
    "customer_messages",
    "answers",
    "no_answers",
    "operator_replies",
    "handoffs",
    "handoff_reason",
    "positive_feedback",
    "negative_feedback",
    "csat_score",
    "next_contact_at",
    "outcome",
]


def _pseudonym(tenant_id: str, end_user_id: str | None, salt: str) -> str | None:
    """Events stored before ids were pseudonymised at ingestion are exported pseudonymised all the same."""
    return tenant_pseudonym(tenant_id, end_user_id, salt=salt) if end_user_id else end_user_id


def _line(values: Sequence[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(
        [
            "" if value is None else value.isoformat() if isinstance(value, datetime) else value
            for value in values
        ]
    )
    return buffer.getvalue()


def conversation_outcome(fact: ConversationFactRow, *, recontact_days: int, now: datetime) -> str:
    """The same judgement as the resolution report, for one conversation."""
    window = timedelta(days=recontact_days)
    if fact.answers == 0:
        return "not_answered"
    if fact.handoffs > 0:
        return "handoff"
    if fact.negative_feedback > 0 or (fact.csat_score is not None and fact.csat_score <= 2):
        return "negative_feedback"
    if fact.recontact_gap_seconds is not None and fact.recontact_gap_seconds <= window.total_seconds():
        return "recontact"
    if fact.last_activity_at > now - window:
        return "pending"
    if fact.last_answer_no_answer:
        return "last_answer_unanswered"
    return "resolved_by_bot"


async def events_csv(
    sessionmaker: async_sessionmaker[AsyncSession], report: Report, *, salt: str
) -> AsyncIterator[str]:
    yield _line(EVENT_COLUMNS)
    after: tuple[datetime, int] | None = None
    while True:
        async with sessionmaker() as session:
            page = await repository.events_page(
                session,
                tenant_id=report.tenant_id,
                start=report.start_utc,
                end=report.end_utc,
                after=after,
                limit=PAGE,
            )
        if not page:
            return
        yield "".join(
            _line(
                [
                    row.event_id,
                    row.type,
                    row.occurred_at,
                    row.received_at,
                    row.source,
                    row.conversation_id,
                    _pseudonym(row.tenant_id, row.end_user_id, salt),
                    row.channel,
                    orjson.dumps(row.properties).decode(),
                ]
            )
            for row in page
        )
        after = (page[-1].occurred_at, page[-1].seq)


async def conversations_csv(
    sessionmaker: async_sessionmaker[AsyncSession], report: Report, *, recontact_days: int, salt: str
) -> AsyncIterator[str]:
    now = datetime.now(UTC)
    yield _line(CONVERSATION_COLUMNS)
    after: tuple[datetime, str] | None = None
    while True:
        async with sessionmaker() as session:
            page = await repository.conversations_page(
                session,
                tenant_id=report.tenant_id,
                start=report.start_utc,
                end=report.end_utc,
                after=after,
                limit=PAGE,
            )
        if not page:
            return
        yield "".join(
            _line(
                [
                    *(
                        _pseudonym(fact.tenant_id, fact.end_user_id, salt)
                        if column == "end_user_id"
                        else getattr(fact, column)
                        for column in CONVERSATION_COLUMNS[:-1]
                    ),
                    conversation_outcome(fact, recontact_days=recontact_days, now=now),
                ]
            )
            for fact in page
        )
        after = (page[-1].started_at, page[-1].conversation_id)
