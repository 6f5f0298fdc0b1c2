"""Event ingestion: each event validated on its own, stored once, folded into rollups and conversation facts."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard_analytics.events import repository
from switchboard_analytics.events.metrics import Metric, increments, is_negative
from switchboard_analytics.events.models import ConversationFactRow
from switchboard_analytics.settings import DEV_PSEUDONYM_SALT
from switchboard_shared.contracts.analytics import BatchResult, Event, EventRejection, EventType
from switchboard_shared.contracts.common import strip_control_characters
from switchboard_shared.redaction import redact_value, tenant_pseudonym

# Events that mean someone was talking in the conversation (feedback and CSAT do not extend it).
ACTIVITY_TYPES = frozenset(
    {
        EventType.CONVERSATION_STARTED,
        EventType.MESSAGE_RECEIVED,
        EventType.ANSWER_SENT,
        EventType.OPERATOR_REPLIED,
        EventType.HANDOFF,
        EventType.HANDOFF_RETURNED,
        EventType.TOOL_CALLED,
    }
)
MAX_RECONTACT_DAYS = 90
TEXT_FIELDS = ("id", "tenant_id", "source", "conversation_id", "end_user_id", "channel")
MAX_ID_LENGTH = {"conversation_id": 128, "end_user_id": 255, "channel": 32}


@dataclass(frozen=True, slots=True)
class IngestLimits:
    max_properties_bytes: int = 16_384
    max_future_skew: timedelta = timedelta(minutes=5)
    max_age: timedelta = timedelta(days=400)
    # End-user ids are stored only as pseudonyms under the tenant's salt (derived from this one).
    pseudonym_salt: str = DEV_PSEUDONYM_SALT


def clean_text(value: Any) -> Any:
    """Strings without NUL and other control characters (tabs and line breaks stay): the databases refuse
    NUL in text, and an event is kept rather than lost for one stray character."""
    if isinstance(value, str):
        return strip_control_characters(value)
    if isinstance(value, dict):
        return {clean_text(k): clean_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_text(v) for v in value]
    return value


def _reason(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:3]:
        location = ".".join(str(part) for part in error.get("loc", ())) or "event"
        if location == "type" and error.get("type") == "enum":
            parts.append(f"type: unknown event type {str(error.get('input'))[:40]!r}")
        else:
            parts.append(f"{location}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


def validate_event(raw: Any, *, now: datetime, limits: IngestLimits, tenant_id: str | None) -> Event | str:
    """The event, or why it is refused."""
    if not isinstance(raw, dict):
        return "event: must be a JSON object"
    try:
        event = Event.model_validate(raw)
    except ValidationError as exc:
        return _reason(exc)
    if tenant_id is not None and event.tenant_id != tenant_id:
        return "tenant_id: does not match the caller's tenant"
    for field, limit in MAX_ID_LENGTH.items():
        value = getattr(event, field)
        if value is not None and len(value) > limit:
            return f"{field}: longer than {limit} characters"
    if event.occurred_at > now + limits.max_future_skew:
        return "occurred_at: is in the future"
    if event.occurred_at < now - limits.max_age:
        return f"occurred_at: older than {limits.max_age.days} days"
    for field in TEXT_FIELDS:
        value = getattr(event, field)
        if value is not None and "\x00" in value:
            return f"{field}: NUL characters are not allowed"
    serialised = orjson.dumps(event.properties)  # NaN and infinities become null here
    if len(serialised) > limits.max_properties_bytes:
        return f"properties: larger than {limits.max_properties_bytes} bytes"
    # Stored redacted: e-mails, IBANs, phone and card numbers in free text (a customer's question) never
    # reach the events table, its exports or PostHog; nor does the end user's own id.
    event.properties = redact_value("properties", clean_text(orjson.loads(serialised)))
    if event.end_user_id is not None:
        event.end_user_id = tenant_pseudonym(event.tenant_id, event.end_user_id, salt=limits.pseudonym_salt)
    return event


def hour_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def day_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def month_of(moment: datetime) -> datetime:
    return day_of(moment).replace(day=1)


def grains_of(moment: datetime) -> tuple[tuple[str, datetime], ...]:
    """The rollup buckets one moment counts in: its UTC hour, day and month."""
    return (("h", hour_of(moment)), ("d", day_of(moment)), ("m", month_of(moment)))


def rollup_increments(events: list[Event]) -> dict[repository.RollupKey, tuple[int, float]]:
    totals: dict[repository.RollupKey, list[float]] = defaultdict(lambda: [0, 0.0])
    for event in events:
        buckets = grains_of(event.occurred_at)
        for metric, key, value in increments(event.type, event.properties):
            for grain, bucket in buckets:
                slot = totals[(event.tenant_id, grain, metric, bucket, key)]
                slot[0] += 1
                slot[1] += value
    return {key: (int(count), total) for key, (count, total) in totals.items()}


def merge_event(fact: ConversationFactRow, event: Event) -> None:
    """Fold one event into what is known about its conversation (order-independent)."""
    props = event.properties
    at = event.occurred_at
    if fact.end_user_id is None and event.end_user_id:
        fact.end_user_id = event.end_user_id
    if fact.channel is None and event.channel:
        fact.channel = event.channel
    fact.started_at = min(fact.started_at, at)
    if event.type in ACTIVITY_TYPES:
        fact.last_activity_at = max(fact.last_activity_at, at)
    match event.type:
        case EventType.MESSAGE_RECEIVED:
            fact.customer_messages += 1
        case EventType.ANSWER_SENT:
            no_answer = props.get("no_answer") is True
            fact.answers += 1
            fact.no_answers += int(no_answer)
            if fact.last_answer_at is None or at >= fact.last_answer_at:
                fact.last_answer_at = at
                fact.last_answer_no_answer = no_answer
        case EventType.OPERATOR_REPLIED:
            fact.operator_replies += 1
        case EventType.HANDOFF:
            fact.handoffs += 1
            reason = props.get("reason")
            if fact.handoff_reason is None:
                fact.handoff_reason = str(reason)[:64] if reason else "unspecified"
        case EventType.FEEDBACK:
            if props.get("rating") == "up":
                fact.positive_feedback += 1
            elif is_negative(event.type, props):
                fact.negative_feedback += 1
        case EventType.CSAT:
            score = props.get("score")
            if isinstance(score, int) and not isinstance(score, bool) and 1 <= score <= 5:
                fact.csat_score = score
        case EventType.CONVERSATION_RESOLVED:
            fact.resolved_at = at if fact.resolved_at is None else max(fact.resolved_at, at)
        case _:
            pass


def _gap(fact: ConversationFactRow) -> float | None:
    if fact.next_contact_at is None:
        return None
    return (fact.next_contact_at - fact.last_activity_at).total_seconds()


def _skeleton(event: Event) -> dict[str, Any]:
    return {
        "tenant_id": event.tenant_id,
        "conversation_id": event.conversation_id,
        "end_user_id": event.end_user_id,
        "channel": event.channel,
        "started_at": event.occurred_at,
        "last_activity_at": event.occurred_at,
        "customer_messages": 0,
        "answers": 0,
        "no_answers": 0,
        "last_answer_no_answer": False,
        "operator_replies": 0,
        "handoffs": 0,
        "positive_feedback": 0,
        "negative_feedback": 0,
    }


def outcome_signature(fact: ConversationFactRow) -> str:
    """What the resolution report needs of one conversation, as a rollup key.

    ``<engaged><answered><handed off><negative><last answer was 'no answer'>:<re-contact gap in days>``;
    the gap is rounded up to whole days, so "re-contact within N days" is ``gap <= N`` for any N.
    """
    gap = fact.recontact_gap_seconds
    gap_days = "-" if gap is None else str(min(MAX_RECONTACT_DAYS + 1, max(0, math.ceil(gap / 86400))))
    negative = fact.negative_feedback > 0 or (fact.csat_score is not None and fact.csat_score <= 2)
    flags = (
        fact.customer_messages > 0,
        fact.answers > 0,
        fact.handoffs > 0,
        negative,
        fact.last_answer_no_answer,
    )
    return "".join("1" if flag else "0" for flag in flags) + ":" + gap_days


def _contribution(fact: ConversationFactRow) -> tuple[datetime, str]:
    return fact.started_at, outcome_signature(fact)


async def update_conversations(session: AsyncSession, events: list[Event]) -> None:
    by_conversation: dict[tuple[str, str], list[Event]] = defaultdict(list)
    for event in events:
        if event.conversation_id:
            by_conversation[(event.tenant_id, event.conversation_id)].append(event)
    if not by_conversation:
        return
    skeletons = [_skeleton(min(group, key=lambda e: e.occurred_at)) for group in by_conversation.values()]
    facts, created = await repository.lock_conversations(session, skeletons)
    before: dict[tuple[str, str], tuple[datetime, str] | None] = {
        key: None if key in created else _contribution(fact) for key, fact in facts.items()
    }
    relink: list[ConversationFactRow] = []
    for key, group in by_conversation.items():
        fact = facts[key]
        previous = (None if key in created else fact.started_at, fact.end_user_id)
        for event in group:
            merge_event(fact, event)
        if fact.end_user_id and (previous[0] != fact.started_at or previous[1] != fact.end_user_id):
            relink.append(fact)
        fact.recontact_gap_seconds = _gap(fact)
    if relink:
        await _link_recontacts(session, relink, facts, before)
    increments: dict[repository.RollupKey, tuple[int, float]] = {}

    def add(tenant_id: str, contribution: tuple[datetime, str], delta: int) -> None:
        started, signature = contribution
        for grain, bucket in grains_of(started):
            key = (tenant_id, grain, Metric.CONVERSATION, bucket, signature)
            count, _ = increments.get(key, (0, 0.0))
            increments[key] = (count + delta, 0.0)

    for key, fact in facts.items():
        old, new = before[key], _contribution(fact)
        if old != new:
            if old is not None:
                add(fact.tenant_id, old, -1)
            add(fact.tenant_id, new, 1)
    await session.flush()
    await repository.upsert_rollups(session, {k: v for k, v in increments.items() if v[0] != 0})


async def _link_recontacts(
    session: AsyncSession,
    relink: list[ConversationFactRow],
    facts: dict[tuple[str, str], ConversationFactRow],
    before: dict[tuple[str, str], tuple[datetime, str] | None],
) -> None:
    """Set each conversation's ``next_contact_at``: when its end user next started a conversation.

    Only ever moves earlier (conversations are only added, and start times only move earlier), so
    concurrent or out-of-order batches converge. Contacts further apart than the longest allowed
    re-contact window do not matter, which bounds the rows read. Rows loaded here join ``facts`` (with
    their contribution before the change) so their rollups move too.
    """
    users = sorted({(fact.tenant_id, fact.end_user_id or "") for fact in relink})
    reach = timedelta(days=MAX_RECONTACT_DAYS + 1)
    loaded = await repository.user_conversations(
        session,
        users=users,
        start=min(fact.started_at for fact in relink) - reach,
        end=max(fact.started_at for fact in relink) + reach,
    )
    for fact in loaded:
        key = (fact.tenant_id, fact.conversation_id)
        if key not in facts:
            facts[key] = fact
            before[key] = _contribution(fact)
    wanted = set(users)
    by_user: dict[tuple[str, str], list[ConversationFactRow]] = defaultdict(list)
    for fact in facts.values():
        if fact.end_user_id and (fact.tenant_id, fact.end_user_id) in wanted:
            by_user[(fact.tenant_id, fact.end_user_id)].append(fact)
    for conversations in by_user.values():
        ordered = sorted(conversations, key=lambda f: (f.started_at, f.conversation_id))
        for index, fact in enumerate(ordered):
            following = next(
                (other.started_at for other in ordered[index + 1 :] if other.started_at > fact.started_at),
                None,
            )
            if following is not None and (fact.next_contact_at is None or following < fact.next_contact_at):
                fact.next_contact_at = following
                fact.recontact_gap_seconds = _gap(fact)


def _row(event: Event, received_at: datetime) -> dict[str, Any]:
    return {
        "event_id": event.id,
        "tenant_id": event.tenant_id,
        "type": event.type.value,
        "occurred_at": event.occurred_at,
        "received_at": received_at,
        "source": event.source,
        "conversation_id": event.conversation_id,
        "end_user_id": event.end_user_id,
        "channel": event.channel,
        "properties": event.properties,
    }


async def ingest(
    *,
    session: AsyncSession,
    raw_events: list[Any],
    limits: IngestLimits,
    tenant_id: str | None = None,
    now: datetime | None = None,
) -> BatchResult:
    now = now or datetime.now(UTC)
    rejected: list[EventRejection] = []
    valid: dict[str, Event] = {}
    duplicates = 0
    for index, raw in enumerate(raw_events):
        checked = validate_event(raw, now=now, limits=limits, tenant_id=tenant_id)
        if isinstance(checked, str):
            raw_id = raw.get("id") if isinstance(raw, dict) else None
            rejected.append(
                EventRejection(index=index, id=raw_id if isinstance(raw_id, str) else None, error=checked)
            )
        elif checked.id in valid:
            duplicates += 1
        else:
            valid[checked.id] = checked
    new_ids = await repository.insert_events(session, [_row(event, now) for event in valid.values()])
    duplicates += len(valid) - len(new_ids)
    fresh = [event for event in valid.values() if event.id in new_ids]
    if fresh:
        await repository.upsert_rollups(session, rollup_increments(fresh))
        await update_conversations(session, fresh)
    return BatchResult(accepted=len(fresh), duplicates=duplicates, rejected=rejected, received_at=now)
