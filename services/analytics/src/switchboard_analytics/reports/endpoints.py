"""Reports under ``/internal/v1/analytics/...`` (public ``/v1/analytics/...`` through the gateway)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query

from switchboard_analytics.reports import service
from switchboard_analytics.reports.schemas import (
    ContentGapReport,
    DocumentReport,
    EscalationReport,
    LatencyReport,
    OverviewReport,
    ProviderReport,
    ResolutionReport,
    SatisfactionReport,
    UnansweredReport,
    VolumeReport,
)
from switchboard_analytics.runtime import RuntimeDep
from switchboard_analytics.settings import AnalyticsSettings
from switchboard_shared.contracts.routes import END_USER_HEADER, KEY_SCOPE_HEADER
from switchboard_shared.deps import SessionDep, TenantDep
from switchboard_shared.errors import AppError, ErrorCode, error_responses


async def refuse_end_users(
    scope: Annotated[str | None, Header(alias=KEY_SCOPE_HEADER)] = None,
    end_user: Annotated[str | None, Header(alias=END_USER_HEADER)] = None,
) -> None:
    """Reports are for the tenant's operators: a widget key or an end user never reads them."""
    if scope == "widget" or end_user:
        raise AppError(ErrorCode.FORBIDDEN, "Analytics needs a server or admin key.")


router = APIRouter(
    prefix="/internal/v1/analytics",
    tags=["reports"],
    responses=error_responses(400, 401, 403, 422),
    dependencies=[Depends(refuse_end_users)],
)


async def settings_of(runtime: RuntimeDep) -> AnalyticsSettings:
    return runtime.settings


SettingsDep = Annotated[AnalyticsSettings, Depends(settings_of)]


async def report_range(
    tenant_id: TenantDep,
    settings: SettingsDep,
    start: Annotated[date, Query(description="First local day (YYYY-MM-DD)")],
    end: Annotated[date, Query(description="Last local day, inclusive (YYYY-MM-DD)")],
    tz: Annotated[str, Query(max_length=64, description="IANA time zone of the days")] = "UTC",
) -> service.Report:
    return service.Report(tenant_id=tenant_id, start=start, end=end, tz=tz, max_days=settings.max_report_days)


ReportDep = Annotated[service.Report, Depends(report_range)]


async def recontact_window(
    settings: SettingsDep,
    recontact_days: Annotated[
        int | None, Query(ge=0, le=90, description="Re-contact window of the resolution metric (days)")
    ] = None,
) -> int:
    return settings.recontact_days if recontact_days is None else recontact_days


RecontactDep = Annotated[int, Depends(recontact_window)]
LimitQuery = Annotated[int, Query(ge=1, le=200)]


@router.get("/overview", response_model=OverviewReport, summary="Every headline metric of the range")
async def overview(session: SessionDep, report: ReportDep, recontact_days: RecontactDep) -> OverviewReport:
    sums = await service.overview_sums(session, report)
    resolved = await service.resolution(session, report, recontact_days=recontact_days, sums=sums)
    return OverviewReport(
        range=report.range,
        volume=await service.volume(session, report, sums=sums),
        resolution=resolved,
        escalations=await service.escalations(
            session, report, recontact_days=recontact_days, conversations=resolved, sums=sums
        ),
        satisfaction=await service.satisfaction(session, report, sums=sums),
        latency=await service.latency(session, report, sums=sums),
        providers=await service.providers(session, report, sums=sums),
    )


@router.get("/volume", response_model=VolumeReport, summary="Conversations and messages per local day")
async def volume(session: SessionDep, report: ReportDep) -> VolumeReport:
    return await service.volume(session, report)


@router.get("/resolution", response_model=ResolutionReport, summary="Resolution, escalation and deflection")
async def resolution(
    session: SessionDep, report: ReportDep, recontact_days: RecontactDep
) -> ResolutionReport:
    return await service.resolution(session, report, recontact_days=recontact_days)


@router.get("/escalations", response_model=EscalationReport, summary="Handoff rate and reasons")
async def escalations(
    session: SessionDep, report: ReportDep, recontact_days: RecontactDep
) -> EscalationReport:
    return await service.escalations(session, report, recontact_days=recontact_days)


@router.get("/satisfaction", response_model=SatisfactionReport, summary="CSAT and thumbs")
async def satisfaction(session: SessionDep, report: ReportDep) -> SatisfactionReport:
    return await service.satisfaction(session, report)


@router.get("/latency", response_model=LatencyReport, summary="Answer latency p50/p95")
async def latency(session: SessionDep, report: ReportDep) -> LatencyReport:
    return await service.latency(session, report)


@router.get("/providers", response_model=ProviderReport, summary="Provider usage, errors and fallbacks")
async def providers(session: SessionDep, report: ReportDep) -> ProviderReport:
    return await service.providers(session, report)


@router.get("/unanswered", response_model=UnansweredReport, summary="Top unanswered questions, grouped")
async def unanswered(session: SessionDep, report: ReportDep, limit: LimitQuery = 20) -> UnansweredReport:
    return await service.unanswered(session, report, limit=limit)


@router.get(
    "/content-gaps",
    response_model=ContentGapReport,
    summary="Per knowledge base: questions refused or rated down, grouped, with the documents cited",
)
async def content_gaps(
    session: SessionDep,
    report: ReportDep,
    limit: LimitQuery = 20,
    kb_id: Annotated[
        str | None, Query(min_length=1, max_length=64, description="Only this knowledge base")
    ] = None,
) -> ContentGapReport:
    return await service.content_gaps(session, report, kb_id=kb_id, limit=limit)


@router.get(
    "/documents", response_model=DocumentReport, summary="Top cited documents and those in bad answers"
)
async def documents(session: SessionDep, report: ReportDep, limit: LimitQuery = 20) -> DocumentReport:
    return await service.documents(session, report, limit=limit)
