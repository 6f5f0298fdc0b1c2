"""Support metrics per tenant and local-time range, read from rollups and conversation facts."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.ext.asyncio import AsyncSession

from switchboard_analytics.events.metrics import (
    GAP_RATED_DOWN,
    GAP_REFUSED,
    LATENCY_GAMMA,
    Metric,
    gap_prefix,
    latency_bucket_value,
    parse_gap_key,
)
from switchboard_analytics.reports import repository
from switchboard_analytics.reports.clustering import cluster_questions
from switchboard_analytics.reports.schemas import (
    ContentGap,
    ContentGapReport,
    DayVolume,
    DocumentCount,
    DocumentReport,
    EscalationReport,
    GapDocument,
    KnowledgeBaseGaps,
    LatencyReport,
    LatencyStats,
    ProviderReport,
    ReportRange,
    ResolutionReport,
    SatisfactionReport,
    UnansweredQuestion,
    UnansweredReport,
    VolumeReport,
)
from switchboard_shared.contracts.analytics import LATENCY_PARTS, EventType
from switchboard_shared.errors import AppError, ErrorCode

UNANSWERED_CANDIDATES = 400
GAP_CANDIDATES = 2000  # (knowledge base, refused or rated down, question) keys read per report
GAP_DOCUMENTS = 5  # documents listed per gap
RESOLUTION_DEFINITION = (
    "A conversation started in the range is resolved by the bot when the bot answered at least once, "
    "it was never handed off, it got no negative feedback (thumbs down or CSAT 1-2), the bot's last "
    "answer was not a 'no answer', and the same end user did not start another conversation within "
    "recontact_days of its last activity. Conversations whose re-contact window is still open are "
    "pending and left out of the rate."
)
VOLUME_TYPES = [
    EventType.CONVERSATION_STARTED.value,
    EventType.MESSAGE_RECEIVED.value,
    EventType.ANSWER_SENT.value,
    EventType.HANDOFF.value,
]


def _floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _ceil_day(moment: datetime) -> datetime:
    floor = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return floor if floor == moment else floor + timedelta(days=1)


def _floor_day(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _rate(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


class Report:
    """One report request: tenant, local dates [start, end] in a time zone, and its UTC window."""

    def __init__(self, *, tenant_id: str, start: date, end: date, tz: str, max_days: int) -> None:
        try:
            self.zone = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise AppError(ErrorCode.VALIDATION_ERROR, f"Unknown time zone {tz!r}.") from exc
        if end < start:
            raise AppError(ErrorCode.VALIDATION_ERROR, "end must not be before start.")
        if (end - start).days + 1 > max_days:
            raise AppError(ErrorCode.VALIDATION_ERROR, f"The range may span at most {max_days} days.")
        self.tenant_id = tenant_id
        self.start = start
        self.end = end
        self.tz = tz
        self.start_utc = datetime.combine(start, time(), self.zone).astimezone(UTC)
        self.end_utc = datetime.combine(end + timedelta(days=1), time(), self.zone).astimezone(UTC)
        start_hour = _floor_hour(self.start_utc)
        end_hour = _floor_hour(self.end_utc)
        first_day, end_day = _ceil_day(start_hour), _floor_day(end_hour)
        whole_days = first_day < end_day
        self.window = repository.Window(
            start_hour=start_hour,
            end_hour=end_hour,
            first_day=first_day if whole_days else None,
            end_day=end_day if whole_days else None,
        )
        self.approximate = start_hour != self.start_utc or end_hour != self.end_utc

    @property
    def range(self) -> ReportRange:
        return ReportRange(
            tenant_id=self.tenant_id,
            start=self.start,
            end=self.end,
            tz=self.tz,
            start_utc=self.start_utc,
            end_utc=self.end_utc,
            approximate_edges=self.approximate,
        )


Sums = dict[str, dict[str, tuple[int, float]]]
OVERVIEW_METRICS = [
    Metric.EVENT,
    Metric.CONVERSATION,
    Metric.HANDOFF_REASON,
    Metric.CSAT,
    Metric.FEEDBACK,
    Metric.LATENCY,
    Metric.PROVIDER,
    Metric.PROVIDER_ERROR,
    Metric.FALLBACK,
]


async def _sums(session: AsyncSession, report: Report, metrics: list[str], prefetched: Sums | None) -> Sums:
    if prefetched is not None and all(metric in prefetched for metric in metrics):
        return prefetched
    return await repository.rollup_sums(
        session, tenant_id=report.tenant_id, window=report.window, metrics=metrics
    )


async def overview_sums(session: AsyncSession, report: Report) -> Sums:
    """Every rollup the overview needs, in one read."""
    return await _sums(session, report, OVERVIEW_METRICS, None)


async def volume(session: AsyncSession, report: Report, *, sums: Sums | None = None) -> VolumeReport:
    sums = await _sums(session, report, [Metric.EVENT], sums)
    by_type = {key: count for key, (count, _) in sums[Metric.EVENT].items()}
    local_days = [report.start + timedelta(days=i) for i in range((report.end - report.start).days + 1)]
    day_starts = [datetime.combine(day, time(), report.zone).astimezone(UTC) for day in local_days]
    series = await repository.daily_series(
        session,
        tenant_id=report.tenant_id,
        day_starts=[report.window.start_hour, *day_starts[1:]],
        end=report.window.end_hour,
        metric=Metric.EVENT,
        keys=VOLUME_TYPES,
    )
    per_day: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for index, key, count in series:
        per_day[local_days[index]][key] += count
    days = []
    for day in local_days:
        counts = per_day.get(day, {})
        days.append(
            DayVolume(
                day=day,
                conversations=counts.get(EventType.CONVERSATION_STARTED, 0),
                customer_messages=counts.get(EventType.MESSAGE_RECEIVED, 0),
                answers=counts.get(EventType.ANSWER_SENT, 0),
                handoffs=counts.get(EventType.HANDOFF, 0),
            )
        )
    return VolumeReport(
        range=report.range,
        conversations=by_type.get(EventType.CONVERSATION_STARTED, 0),
        customer_messages=by_type.get(EventType.MESSAGE_RECEIVED, 0),
        answers=by_type.get(EventType.ANSWER_SENT, 0),
        operator_replies=by_type.get(EventType.OPERATOR_REPLIED, 0),
        handoffs=by_type.get(EventType.HANDOFF, 0),
        events_by_type=dict(sorted(by_type.items())),
        days=days,
    )


def _signature_counts(signatures: dict[str, tuple[int, float]], recontact_days: int) -> dict[str, int]:
    counts = dict.fromkeys(
        (
            "conversations",
            "engaged",
            "answered",
            "escalated",
            "deflected",
            "handoff",
            "negative_feedback",
            "recontact",
            "answered_last_unanswered",
            "candidates",
            "candidates_last_unanswered",
        ),
        0,
    )
    for signature, (count, _) in signatures.items():
        flags, _, gap = signature.partition(":")
        if len(flags) != 5 or count == 0:
            continue
        engaged, answered, escalated, negative, last_unanswered = (flag == "1" for flag in flags)
        recontacted = gap != "-" and int(gap) <= recontact_days
        counts["conversations"] += count
        counts["engaged"] += count * engaged
        counts["escalated"] += count * escalated
        counts["deflected"] += count * (engaged and answered and not escalated)
        if not answered:
            continue
        counts["answered"] += count
        counts["handoff"] += count * escalated
        counts["negative_feedback"] += count * negative
        counts["recontact"] += count * recontacted
        counts["answered_last_unanswered"] += count * last_unanswered
        if not (escalated or negative or recontacted):
            counts["candidates"] += count
            counts["candidates_last_unanswered"] += count * last_unanswered
    return counts


async def resolution(
    session: AsyncSession,
    report: Report,
    *,
    recontact_days: int,
    now: datetime | None = None,
    sums: Sums | None = None,
) -> ResolutionReport:
    """From the conversations' outcome rollups; only the conversations still inside their re-contact
    window (recently active) are read row by row, to leave them out as pending."""
    now = now or datetime.now(UTC)
    window = timedelta(days=recontact_days)
    sums = await _sums(session, report, [Metric.CONVERSATION], sums)
    counts = _signature_counts(sums[Metric.CONVERSATION], recontact_days)
    pending, pending_last_unanswered = await repository.open_window_candidates(
        session,
        tenant_id=report.tenant_id,
        start=report.window.start_hour,
        end=report.window.end_hour,
        recontact_seconds=window.total_seconds(),
        active_after=now - window,
    )
    evaluated = counts["answered"] - pending
    resolved = (counts["candidates"] - counts["candidates_last_unanswered"]) - (
        pending - pending_last_unanswered
    )
    return ResolutionReport(
        range=report.range,
        recontact_days=recontact_days,
        conversations=counts["conversations"],
        engaged=counts["engaged"],
        answered=counts["answered"],
        pending=pending,
        evaluated=evaluated,
        resolved_by_bot=resolved,
        resolution_rate=_rate(resolved, evaluated),
        not_resolved_because={
            "handoff": counts["handoff"],
            "negative_feedback": counts["negative_feedback"],
            "recontact": counts["recontact"],
            "last_answer_unanswered": counts["answered_last_unanswered"] - pending_last_unanswered,
        },
        escalated=counts["escalated"],
        escalation_rate=_rate(counts["escalated"], counts["engaged"]),
        deflected=counts["deflected"],
        deflection_rate=_rate(counts["deflected"], counts["engaged"]),
        definition=RESOLUTION_DEFINITION,
    )


async def escalations(
    session: AsyncSession,
    report: Report,
    *,
    recontact_days: int,
    conversations: ResolutionReport | None = None,
    sums: Sums | None = None,
) -> EscalationReport:
    sums = await _sums(session, report, [Metric.HANDOFF_REASON], sums)
    reasons = {key: count for key, (count, _) in sums[Metric.HANDOFF_REASON].items()}
    if conversations is None:
        conversations = await resolution(session, report, recontact_days=recontact_days)
    return EscalationReport(
        range=report.range,
        handoffs=sum(reasons.values()),
        escalated_conversations=conversations.escalated,
        escalation_rate=conversations.escalation_rate,
        reasons=dict(sorted(reasons.items(), key=lambda item: (-item[1], item[0]))),
    )


async def satisfaction(
    session: AsyncSession, report: Report, *, sums: Sums | None = None
) -> SatisfactionReport:
    sums = await _sums(session, report, [Metric.CSAT, Metric.FEEDBACK], sums)
    csat = sums[Metric.CSAT]
    responses = sum(count for count, _ in csat.values())
    score_total = sum(total for _, total in csat.values())
    up = sums[Metric.FEEDBACK].get("up", (0, 0.0))[0]
    down = sums[Metric.FEEDBACK].get("down", (0, 0.0))[0]
    return SatisfactionReport(
        range=report.range,
        csat_responses=responses,
        csat_average=round(score_total / responses, 3) if responses else None,
        csat_distribution={str(score): csat.get(str(score), (0, 0.0))[0] for score in range(1, 6)},
        thumbs_up=up,
        thumbs_down=down,
        thumbs_up_ratio=_rate(up, up + down),
    )


def _percentile(histogram: list[tuple[int, int]], count: int, quantile: float) -> float:
    rank = max(1, math.ceil(quantile * count))
    seen = 0
    for index, bucket_count in histogram:
        seen += bucket_count
        if seen >= rank:
            return round(latency_bucket_value(index), 1)
    return round(latency_bucket_value(histogram[-1][0]), 1)


async def latency(session: AsyncSession, report: Report, *, sums: Sums | None = None) -> LatencyReport:
    sums = await _sums(session, report, [Metric.LATENCY], sums)
    histograms: dict[str, list[tuple[int, int]]] = defaultdict(list)
    totals: dict[str, float] = defaultdict(float)
    for key, (count, total) in sums[Metric.LATENCY].items():
        part, _, index = key.partition(":")
        if index.lstrip("-").isdigit():
            histograms[part].append((int(index), count))
            totals[part] += total
    stats = {}
    for part in LATENCY_PARTS:
        histogram = sorted(histograms.get(part, []))
        count = sum(n for _, n in histogram)
        stats[part] = LatencyStats(
            count=count,
            p50_ms=_percentile(histogram, count, 0.50) if count else None,
            p95_ms=_percentile(histogram, count, 0.95) if count else None,
            mean_ms=round(totals[part] / count, 1) if count else None,
        )
    return LatencyReport(
        range=report.range,
        retrieval=stats["retrieval"],
        generation=stats["generation"],
        total=stats["total"],
        relative_error=round((LATENCY_GAMMA - 1) / (LATENCY_GAMMA + 1), 4),
    )


async def providers(session: AsyncSession, report: Report, *, sums: Sums | None = None) -> ProviderReport:
    metrics = [Metric.PROVIDER, Metric.PROVIDER_ERROR, Metric.FALLBACK]
    sums = await _sums(session, report, metrics, sums)
    counts = {metric: {key: n for key, (n, _) in sums[metric].items()} for metric in metrics}
    return ProviderReport(
        range=report.range,
        answers_by_provider=counts[Metric.PROVIDER],
        errors_by_provider=counts[Metric.PROVIDER_ERROR],
        fallbacks=counts[Metric.FALLBACK],
        fallback_count=sum(counts[Metric.FALLBACK].values()),
    )


async def unanswered(session: AsyncSession, report: Report, *, limit: int) -> UnansweredReport:
    candidates = await repository.top_keys(
        session,
        tenant_id=report.tenant_id,
        window=report.window,
        metric=Metric.UNANSWERED,
        limit=UNANSWERED_CANDIDATES,
    )
    clusters = cluster_questions(candidates)[:limit]
    no_answer_turns = sum(count for _, count in candidates)
    if len(candidates) == UNANSWERED_CANDIDATES:  # the long tail counts too
        no_answer_turns = await repository.metric_total(
            session, tenant_id=report.tenant_id, window=report.window, metric=Metric.UNANSWERED
        )
    return UnansweredReport(
        range=report.range,
        no_answer_turns=no_answer_turns,
        questions=[
            UnansweredQuestion(
                question=cluster.text,
                count=cluster.count,
                variants=[text for text, _ in cluster.variants[:10]],
            )
            for cluster in clusters
        ],
    )


async def content_gaps(
    session: AsyncSession, report: Report, *, kb_id: str | None, limit: int
) -> ContentGapReport:
    """Per knowledge base, the questions the bot refused or was rated down for, grouped by meaning (the
    unanswered-question clustering), most asked first, each with the documents its wrong answers cited."""
    prefix = gap_prefix(kb_id) if kb_id else None
    counted, cited = [
        await repository.top_keys(
            session,
            tenant_id=report.tenant_id,
            window=report.window,
            metric=metric,
            limit=GAP_CANDIDATES,
            prefix=prefix,
        )
        for metric in (Metric.GAP, Metric.GAP_SOURCE)
    ]
    # kb -> question -> {part: count}; kb -> question -> {document: count}
    parts: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    for key, count in counted:
        parsed = parse_gap_key(key)
        if parsed is not None and parsed[1] in (GAP_REFUSED, GAP_RATED_DOWN):
            parts[parsed[0]][parsed[2]][parsed[1]] = count
    sources: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    for key, count in cited:
        parsed = parse_gap_key(key)
        if parsed is not None:
            sources[parsed[0]][parsed[2]][parsed[1]] = count
    out = []
    for kb, questions in parts.items():
        clusters = cluster_questions([(q, sum(by_part.values())) for q, by_part in questions.items()])
        gaps = []
        for cluster in clusters[:limit]:
            members = [text for text, _ in cluster.variants]
            documents: dict[str, int] = defaultdict(int)
            for member in members:
                for document_id, count in sources[kb].get(member, {}).items():
                    documents[document_id] += count
            ranked = sorted(documents.items(), key=lambda item: (-item[1], item[0]))[:GAP_DOCUMENTS]
            gaps.append(
                ContentGap(
                    question=cluster.text,
                    count=cluster.count,
                    refused=sum(questions[m].get(GAP_REFUSED, 0) for m in members),
                    rated_down=sum(questions[m].get(GAP_RATED_DOWN, 0) for m in members),
                    variants=members[:10],
                    documents=[GapDocument(document_id=d, rated_down=n) for d, n in ranked],
                )
            )
        out.append(
            KnowledgeBaseGaps(
                kb_id=kb,
                refused=sum(q.get(GAP_REFUSED, 0) for q in questions.values()),
                rated_down=sum(q.get(GAP_RATED_DOWN, 0) for q in questions.values()),
                gaps=gaps,
            )
        )
    out.sort(key=lambda kb: (-(kb.refused + kb.rated_down), kb.kb_id))
    return ContentGapReport(range=report.range, knowledge_bases=out)


async def documents(session: AsyncSession, report: Report, *, limit: int) -> DocumentReport:
    tenant_id, window = report.tenant_id, report.window
    cited = await repository.top_keys(
        session, tenant_id=tenant_id, window=window, metric=Metric.CITED, limit=limit
    )
    negative = await repository.top_keys(
        session, tenant_id=tenant_id, window=window, metric=Metric.CITED_NEGATIVE, limit=limit
    )
    negative_of_cited = await repository.key_counts(
        session,
        tenant_id=report.tenant_id,
        window=report.window,
        metric=Metric.CITED_NEGATIVE,
        keys=[key for key, _ in cited],
    )
    cited_of_negative = await repository.key_counts(
        session,
        tenant_id=report.tenant_id,
        window=report.window,
        metric=Metric.CITED,
        keys=[key for key, _ in negative],
    )
    return DocumentReport(
        range=report.range,
        top_cited=[
            DocumentCount(document_id=key, cited=count, cited_in_negative=negative_of_cited.get(key, 0))
            for key, count in cited
        ],
        most_cited_in_negative=[
            DocumentCount(document_id=key, cited=cited_of_negative.get(key, 0), cited_in_negative=count)
            for key, count in negative
        ],
    )
