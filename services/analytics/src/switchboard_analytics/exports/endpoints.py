"""CSV export under ``/internal/v1/analytics/export/...``."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from switchboard_analytics.exports import service
from switchboard_analytics.reports.endpoints import RecontactDep, ReportDep, refuse_end_users
from switchboard_analytics.runtime import RuntimeDep
from switchboard_shared.errors import error_responses

router = APIRouter(
    prefix="/internal/v1/analytics/export",
    tags=["export"],
    responses=error_responses(400, 401, 403, 422),
    dependencies=[Depends(refuse_end_users)],
)
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"


def _attachment(name: str, report_start: str, report_end: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}-{report_start}-{report_end}.csv"'}


@router.get(
    "/events.csv",
    response_class=StreamingResponse,
    summary="Every stored event of the range as CSV (properties as JSON)",
    responses={200: {"content": {"text/csv": {}}}},
)
async def export_events(runtime: RuntimeDep, report: ReportDep) -> StreamingResponse:
    return StreamingResponse(
        service.events_csv(runtime.sessionmaker, report, salt=runtime.settings.pseudonym_salt),
        media_type=CSV_MEDIA_TYPE,
        headers=_attachment("events", report.start.isoformat(), report.end.isoformat()),
    )


@router.get(
    "/conversations.csv",
    response_class=StreamingResponse,
    summary="Conversations started in the range, with their outcome, as CSV",
    responses={200: {"content": {"text/csv": {}}}},
)
async def export_conversations(
    runtime: RuntimeDep, report: ReportDep, recontact_days: RecontactDep
) -> StreamingResponse:
    return StreamingResponse(
        service.conversations_csv(
            runtime.sessionmaker, report, recontact_days=recontact_days, salt=runtime.settings.pseudonym_salt
        ),
        media_type=CSV_MEDIA_TYPE,
        headers=_attachment("conversations", report.start.isoformat(), report.end.isoformat()),
    )
