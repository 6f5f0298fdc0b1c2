"""``POST /internal/v1/events``: batch ingestion with per-event results."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Header

from switchboard_analytics.events import service
from switchboard_analytics.events.schemas import IngestBatch
from switchboard_analytics.runtime import RuntimeDep
from switchboard_analytics.settings import AnalyticsSettings
from switchboard_shared.contracts.analytics import BatchResult
from switchboard_shared.contracts.routes import TENANT_HEADER
from switchboard_shared.deps import SessionDep
from switchboard_shared.errors import error_responses

router = APIRouter(prefix="/internal/v1", tags=["events"])


def ingest_limits(settings: AnalyticsSettings) -> service.IngestLimits:
    return service.IngestLimits(
        max_properties_bytes=settings.max_event_properties_bytes,
        max_future_skew=timedelta(seconds=settings.max_future_skew_seconds),
        max_age=timedelta(days=settings.max_event_age_days),
        pseudonym_salt=settings.pseudonym_salt,
    )


@router.post(
    "/events",
    response_model=BatchResult,
    summary="Ingest a batch of events (partial success: rejected events are listed with a reason)",
    responses=error_responses(401, 413, 422),
)
async def ingest_events(
    batch: IngestBatch,
    runtime: RuntimeDep,
    session: SessionDep,
    tenant_id: Annotated[str | None, Header(alias=TENANT_HEADER)] = None,
) -> BatchResult:
    return await service.ingest(
        session=session, raw_events=batch.events, limits=ingest_limits(runtime.settings), tenant_id=tenant_id
    )
