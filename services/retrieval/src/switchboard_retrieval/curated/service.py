"""Curated answers: a tenant's question -> answer pairs, embedded when saved, matched during a search.

An entry's wordings (its question and variants) are embedded once, when saved, with the embedding model of
its knowledge base (or the service's default model when it has none), so a search compares the query
vector it already computed with them. An entry linked to a knowledge base answers only searches that cover
that knowledge base; an unlinked one (or one whose knowledge base was deleted) answers every search of the
tenant.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from datetime import UTC, datetime

import numpy as np
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard_retrieval.curated import repository
from switchboard_retrieval.curated.matching import Entry, TenantIndex, Vector, wording_key
from switchboard_retrieval.curated.models import CuratedAnswerRow
from switchboard_retrieval.embeddings.encoders import EmbeddingUnavailable, missing_setting
from switchboard_retrieval.kbs import repository as kbs_repository
from switchboard_retrieval.runtime import Runtime
from switchboard_retrieval.settings import RetrievalSettings
from switchboard_shared.contracts.retrieval import (
    CuratedAnswerCreate,
    CuratedAnswerOut,
    CuratedAnswerUpdate,
    CuratedMatch,
    CuratedMatchRequest,
    CuratedMatchResponse,
    CuratedSettings,
    CuratedSettingsOut,
)
from switchboard_shared.errors import AppError, ErrorCode
from switchboard_shared.language import detect_language

log = structlog.get_logger(__name__)


def answer_out(entry: CuratedAnswerRow) -> CuratedAnswerOut:
    return CuratedAnswerOut(
        id=entry.id,
        question=entry.question,
        variants=list(entry.variants or []),
        answer=entry.answer,
        language=entry.language,
        tags=list(entry.tags or []),
        group=entry.group_key,
        kb_id=entry.kb_id,
        embedding_model=entry.embedding_model,
        expires_at=entry.expires_at,
        hit_count=entry.hit_count,
        last_hit_at=entry.last_hit_at,
        created_at=entry.created_at,
        updated_at=entry.updated_at,
    )


def default_thresholds(settings: RetrievalSettings) -> dict[str, float]:
    return dict(settings.curated_thresholds)


def threshold_for(settings: RetrievalSettings, tenant_threshold: float | None, model: str) -> float:
    if tenant_threshold is not None:
        return tenant_threshold
    return settings.curated_thresholds.get(model, settings.curated_threshold)


def _wordings(question: str, variants: Iterable[str]) -> list[str]:
    """The question, then each variant that is not a repeat of an earlier wording."""
    seen: set[str] = set()
    wordings = []
    for text in (question, *variants):
        key = wording_key(text)
        if key and key not in seen:
            seen.add(key)
            wordings.append(text)
    return wordings


async def embed_wordings(rt: Runtime, model: str, wordings: list[str]) -> Vector:
    missing = missing_setting(model, rt.settings)
    if missing is not None:
        raise AppError(
            ErrorCode.VALIDATION_ERROR, f"The {model} embedding model needs {missing}, which is not set."
        )

    def run() -> Vector:
        embedder = rt.embeddings.get(model)
        # Embedded as queries: a curated question is compared with a customer's question, like with like.
        return np.vstack([embedder.embed_query(text) for text in wordings]).astype(np.float32)

    try:
        return await asyncio.to_thread(run)
    except EmbeddingUnavailable as exc:
        raise AppError(
            ErrorCode.SERVICE_UNAVAILABLE,
            f"The embedding model is unavailable: {exc}",
            headers={"Retry-After": "5"},
        ) from exc


async def curated_wordings(
    session: AsyncSession, *, tenant_id: str, except_id: str | None = None
) -> dict[str, str]:
    """Wording key -> id of the tenant's curated answer that has it (question or variant)."""
    return {
        wording_key(text): entry.id
        for entry in await repository.all_entries(session, tenant_id=tenant_id)
        if entry.id != except_id
        for text in (entry.question, *(entry.variants or []))
    }


async def _refuse_duplicates(
    session: AsyncSession, *, tenant_id: str, wordings: list[str], except_id: str | None = None
) -> None:
    taken = await curated_wordings(session, tenant_id=tenant_id, except_id=except_id)
    for text in wordings:
        if wording_key(text) in taken:
            raise AppError(
                ErrorCode.CONFLICT,
                f"The question {text!r} is already curated (answer {taken[wording_key(text)]}).",
            )


async def _model_of(session: AsyncSession, rt: Runtime, *, tenant_id: str, kb_id: str | None) -> str:
    if kb_id is None:
        return rt.settings.default_embedding_model
    kb = await kbs_repository.get_kb_or_404(session, tenant_id=tenant_id, kb_id=kb_id)
    return kb.embedding_model


async def create(
    session: AsyncSession, rt: Runtime, *, tenant_id: str, body: CuratedAnswerCreate
) -> CuratedAnswerRow:
    wordings = _wordings(body.question, body.variants)
    await _refuse_duplicates(session, tenant_id=tenant_id, wordings=wordings)
    model = await _model_of(session, rt, tenant_id=tenant_id, kb_id=body.kb_id)
    vectors = await embed_wordings(rt, model, wordings)
    entry = CuratedAnswerRow(
        tenant_id=tenant_id,
        kb_id=body.kb_id,
        question=body.question,
        variants=wordings[1:],
        answer=body.answer,
        language=body.language or detect_language(body.question),
        tags=list(dict.fromkeys(body.tags)),
        group_key=body.group,
        embedding_model=model,
        vectors=vectors.tobytes(),
        dimensions=int(vectors.shape[1]),
        expires_at=body.expires_at,
        hit_count=0,
    )
    session.add(entry)
    await session.flush()
    await repository.bump_version(session, tenant_id=tenant_id)
    return entry


async def update(
    session: AsyncSession, rt: Runtime, *, entry: CuratedAnswerRow, body: CuratedAnswerUpdate
) -> CuratedAnswerRow:
    fields = body.model_fields_set
    question = body.question if body.question is not None else entry.question
    variants = body.variants if body.variants is not None else list(entry.variants or [])
    wordings = _wordings(question, variants)
    kb_id = body.kb_id if "kb_id" in fields else entry.kb_id
    await _refuse_duplicates(session, tenant_id=entry.tenant_id, wordings=wordings, except_id=entry.id)
    model = await _model_of(session, rt, tenant_id=entry.tenant_id, kb_id=kb_id)
    if model != entry.embedding_model or wordings != [entry.question, *(entry.variants or [])]:
        vectors = await embed_wordings(rt, model, wordings)
        entry.vectors = vectors.tobytes()
        entry.dimensions = int(vectors.shape[1])
        entry.embedding_model = model
    entry.question = question
    entry.variants = wordings[1:]
    entry.kb_id = kb_id
    if body.answer is not None:
        entry.answer = body.answer
    if body.language is not None:
        entry.language = body.language
    if body.tags is not None:
        entry.tags = list(dict.fromkeys(body.tags))
    if "expires_at" in fields:
        entry.expires_at = body.expires_at
    if "group" in fields:
        entry.group_key = body.group
    await session.flush()
    await repository.bump_version(session, tenant_id=entry.tenant_id)
    return entry


async def delete(session: AsyncSession, *, entry: CuratedAnswerRow) -> None:
    tenant_id = entry.tenant_id
    await session.delete(entry)
    await session.flush()
    await repository.bump_version(session, tenant_id=tenant_id)


async def get_settings(session: AsyncSession, rt: Runtime, *, tenant_id: str) -> CuratedSettingsOut:
    row = await repository.settings_row(session, tenant_id=tenant_id)
    return CuratedSettingsOut(
        threshold=row.threshold if row else None, defaults=default_thresholds(rt.settings)
    )


async def put_settings(
    session: AsyncSession, rt: Runtime, *, tenant_id: str, body: CuratedSettings
) -> CuratedSettingsOut:
    row = await repository.bump_version(session, tenant_id=tenant_id)
    row.threshold = body.threshold
    await session.flush()
    return CuratedSettingsOut(threshold=row.threshold, defaults=default_thresholds(rt.settings))


def _entry(row: CuratedAnswerRow) -> Entry:
    vectors = np.frombuffer(row.vectors, dtype=np.float32).reshape(-1, row.dimensions)
    expires = row.expires_at
    if expires is not None and expires.tzinfo is None:  # SQLite hands back naive UTC
        expires = expires.replace(tzinfo=UTC)
    return Entry(
        id=row.id,
        kb_id=row.kb_id,
        language=row.language,
        answer=row.answer,
        group=row.group_key,
        wordings=(row.question, *(row.variants or [])),
        model=row.embedding_model,
        expires_at=expires,
        vectors=vectors,
    )


async def tenant_index(
    session: AsyncSession, rt: Runtime, *, tenant_id: str
) -> tuple[TenantIndex, float | None] | None:
    """The tenant's index (from this replica's memory unless its version moved) and threshold, or None when
    the tenant has no curated answers: on the search path, one primary-key lookup."""
    state = await repository.version_and_threshold(session, tenant_id=tenant_id)
    if state is None:
        return None
    version, threshold = state

    async def load() -> TenantIndex:
        rows = await repository.all_entries(session, tenant_id=tenant_id)
        return TenantIndex.build(version, [_entry(row) for row in rows])

    return await rt.curated.get(tenant_id, version, load), threshold


def match(
    rt: Runtime,
    index: TenantIndex,
    threshold: float | None,
    vectors: dict[str, Vector],
    *,
    language: str | None,
    kb_ids: Iterable[str] | None,
) -> CuratedMatch | None:
    return index.match(
        vectors,
        thresholds=lambda model: threshold_for(rt.settings, threshold, model),
        language=language,
        kb_ids=kb_ids,
        now=datetime.now(UTC),
    )


async def embed_query(rt: Runtime, models: Iterable[str], query: str) -> dict[str, Vector]:
    """Query vectors for the models no knowledge base search computed (curated entries of a model no
    searched knowledge base uses, or a search without vectors)."""
    wanted = [m for m in models if missing_setting(m, rt.settings) is None]
    if not wanted:
        return {}

    def run() -> dict[str, Vector]:
        return {model: rt.embeddings.get(model).embed_query(query) for model in wanted}

    try:
        return await asyncio.to_thread(run)
    except EmbeddingUnavailable as exc:
        log.warning("curated_embedding_unavailable", error=str(exc)[:300])
        return {}


async def dry_run(
    session: AsyncSession, rt: Runtime, *, tenant_id: str, request: CuratedMatchRequest
) -> CuratedMatchResponse:
    started = time.perf_counter()
    found = await tenant_index(session, rt, tenant_id=tenant_id)
    matched = None
    if found is not None:
        index, threshold = found
        vectors = await embed_query(rt, index.models, request.query)
        matched = match(
            rt,
            index,
            threshold,
            vectors,
            language=request.language or detect_language(request.query),
            kb_ids=request.kb_ids,
        )
    return CuratedMatchResponse(match=matched, took_ms=round((time.perf_counter() - started) * 1000, 2))
