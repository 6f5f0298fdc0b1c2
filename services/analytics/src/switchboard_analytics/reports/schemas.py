"""Response models of the reports API."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field


class ReportRange(BaseModel):
    tenant_id: str
    start: date
    end: date = Field(description="Inclusive")
    tz: str
    start_utc: datetime
    end_utc: datetime
    approximate_edges: bool = Field(
        description="True when the zone's offset is not a whole hour: edge hours are attributed by UTC hour"
    )


class DayVolume(BaseModel):
    day: date
    conversations: int
    customer_messages: int
    answers: int
    handoffs: int


class VolumeReport(BaseModel):
    range: ReportRange
    conversations: int
    customer_messages: int
    answers: int
    operator_replies: int
    handoffs: int
    events_by_type: dict[str, int]
    days: list[DayVolume]


class ResolutionReport(BaseModel):
    """Conversations started in the range, judged by what happened in and after them."""

    range: ReportRange
    recontact_days: int
    conversations: int = Field(description="Conversations started in the range")
    engaged: int = Field(description="... in which the customer wrote at least one message")
    answered: int = Field(description="... in which the bot answered at least once")
    pending: int = Field(description="Answered, not escalated, re-contact window still open")
    evaluated: int = Field(description="Answered conversations whose re-contact window has closed")
    resolved_by_bot: int
    resolution_rate: float | None = Field(description="resolved_by_bot / evaluated")
    not_resolved_because: dict[str, int] = Field(
        description="handoff, negative_feedback, recontact, last_answer_unanswered (a conversation may count in several)"
    )
    escalated: int
    escalation_rate: float | None = Field(description="escalated / engaged")
    deflected: int = Field(description="Engaged conversations the bot answered with no handoff")
    deflection_rate: float | None = Field(description="deflected / engaged")
    definition: str


class EscalationReport(BaseModel):
    range: ReportRange
    handoffs: int
    escalated_conversations: int
    escalation_rate: float | None
    reasons: dict[str, int]


class SatisfactionReport(BaseModel):
    range: ReportRange
    csat_responses: int
    csat_average: float | None
    csat_distribution: dict[str, int]
    thumbs_up: int
    thumbs_down: int
    thumbs_up_ratio: float | None


class LatencyStats(BaseModel):
    count: int
    p50_ms: float | None
    p95_ms: float | None
    mean_ms: float | None


class LatencyReport(BaseModel):
    range: ReportRange
    retrieval: LatencyStats
    generation: LatencyStats
    total: LatencyStats
    relative_error: float = Field(description="Bound of the percentiles' relative error (histogram)")


class ProviderReport(BaseModel):
    range: ReportRange
    answers_by_provider: dict[str, int]
    errors_by_provider: dict[str, int]
    fallbacks: dict[str, int] = Field(description="'from>to' → count")
    fallback_count: int


class UnansweredQuestion(BaseModel):
    question: str
    count: int
    variants: list[str]


class UnansweredReport(BaseModel):
    range: ReportRange
    no_answer_turns: int
    questions: list[UnansweredQuestion]


class GapDocument(BaseModel):
    document_id: str
    rated_down: int = Field(description="Thumbs-down answers to the gap's questions that cited this document")


class ContentGap(BaseModel):
    question: str = Field(description="The most asked wording of the cluster")
    count: int = Field(description="Turns refused or rated down, all wordings together")
    refused: int
    rated_down: int
    variants: list[str]
    documents: list[GapDocument] = Field(
        description="Documents cited when the bot answered these questions wrongly: the pages to fix"
    )


class KnowledgeBaseGaps(BaseModel):
    kb_id: str
    refused: int
    rated_down: int
    gaps: list[ContentGap]


class ContentGapReport(BaseModel):
    range: ReportRange
    knowledge_bases: list[KnowledgeBaseGaps]


class DocumentCount(BaseModel):
    document_id: str
    cited: int
    cited_in_negative: int


class DocumentReport(BaseModel):
    range: ReportRange
    top_cited: list[DocumentCount]
    most_cited_in_negative: list[DocumentCount]


class OverviewReport(BaseModel):
    range: ReportRange
    volume: VolumeReport
    resolution: ResolutionReport
    escalations: EscalationReport
    satisfaction: SatisfactionReport
    latency: LatencyReport
    providers: ProviderReport
