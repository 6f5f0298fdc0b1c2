"""One sync of one source: fetch → parse → chunk → embed new chunks in batches → upsert → prune what
vanished → rebuild the KB's BM25 index; progress and counts written to the job row as it goes."""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from switchboard_retrieval.embeddings.encoders import EmbeddingUnavailable
from switchboard_retrieval.index.vectors import collection_name
from switchboard_retrieval.ingestion import repository
from switchboard_retrieval.ingestion.chunking import ChunkDraft, compose_indexed_text
from switchboard_retrieval.ingestion.connectors import FetchFailure, make_connector
from switchboard_retrieval.ingestion.duplicates import (
    chunk_keys,
    kept_copies,
    passage_key,
    reconcile_copies,
)
from switchboard_retrieval.ingestion.fetching import SourceError
from switchboard_retrieval.ingestion.parsing import FetchedDocument, ParseError, parse_document
from switchboard_retrieval.models import ChunkRow, DocumentRow, IngestionJobRow, KnowledgeBaseRow, SourceRow
from switchboard_retrieval.runtime import Runtime
from switchboard_shared.language import text_language

log = structlog.get_logger(__name__)
# A sync stuck as running longer than this (its worker died) no longer holds the next one back.
RUNNING_SYNC_WAIT_SECONDS = 1800.0

FLUSH_CHUNKS = 256
MAX_RECORDED_FAILURES = 200


@dataclass
class PendingDocument:
    uri: str
    doc_id: str
    existing: bool
    name: str
    title: str
    url: str | None
    content_hash: str
    language: str | None
    drafts: list[ChunkDraft]
    old_ids: set[str]


@dataclass
class SyncProgress:
    documents_seen: int = 0
    documents_done: int = 0
    documents_failed: int = 0
    chunks_embedded: int = 0
    counts: dict[str, int] = field(
        default_factory=lambda: {
            "added": 0,
            "updated": 0,
            "unchanged": 0,
            "deleted": 0,
            "documents_added": 0,
            "documents_updated": 0,
            "documents_unchanged": 0,
            "documents_deleted": 0,
        }
    )
    failures: list[dict[str, Any]] = field(default_factory=list)

    def fail(self, uri: str, reason: str) -> None:
        self.documents_failed += 1
        if len(self.failures) < MAX_RECORDED_FAILURES:
            self.failures.append({"document": uri, "reason": reason[:500]})


def document_id(source_id: str, uri: str) -> str:
    return hashlib.sha1(f"{source_id}\x1f{uri}".encode()).hexdigest()[:32]


def content_hash(doc: FetchedDocument) -> str:
    digest = hashlib.sha256(doc.data)
    digest.update("\x1f".join([doc.fmt, doc.title or "", doc.url or "", *doc.breadcrumbs]).encode())
    return digest.hexdigest()


class SourceSync:
    def __init__(self, runtime: Runtime, job_id: str) -> None:
        self.rt = runtime
        self.job_id = job_id
        self.progress = SyncProgress()
        self.pending: list[PendingDocument] = []
        self.pending_chunks = 0
        self.last_report = 0.0
        self.changed = False
        self.only: frozenset[str] | None = None
        # Passage keys whose copies this sync added or removed: their indexed copy is settled at the end.
        self.affected: set[str] = set()

    async def _wait_for_running_sync(self, source_id: str | None) -> None:
        """One sync per source at a time: a job queued while another runs starts when that one ends."""
        if source_id is None:
            return
        deadline = time.monotonic() + RUNNING_SYNC_WAIT_SECONDS
        while time.monotonic() < deadline:
            async with self.rt.sessionmaker() as session:
                running = await repository.other_running_job(session, source_id=source_id, job_id=self.job_id)
            if running is None:
                return
            await asyncio.sleep(0.5)
        log.warning("sync_wait_gave_up", job_id=self.job_id, source_id=source_id)

    async def run(self) -> None:
        rt = self.rt
        async with rt.sessionmaker() as session:
            queued = await session.get(IngestionJobRow, self.job_id)
            source_id = queued.source_id if queued is not None else None
        await self._wait_for_running_sync(source_id)
        async with rt.sessionmaker() as session:
            job = await session.get(IngestionJobRow, self.job_id)
            if job is None or job.status in ("succeeded", "failed"):
                return
            kb = await session.get(KnowledgeBaseRow, job.kb_id)
            source = await session.get(SourceRow, job.source_id) if job.source_id else None
            if kb is None or source is None:
                job.status, job.error, job.finished_at = (
                    "failed",
                    "the source no longer exists",
                    datetime.now(UTC),
                )
                await session.commit()
                return
            job.status, job.started_at, job.attempts = "running", datetime.now(UTC), job.attempts + 1
            job.error = None
            await session.commit()
            self.kb_id, self.tenant_id, self.model = kb.id, kb.tenant_id, kb.embedding_model
            self.source_id, self.source_type = source.id, source.type
            self.config, self.tags = dict(source.config), list(source.tags)
            # A re-sync of one document (``job.document_id``): only it is fetched, and only it is pruned when
            # the source no longer holds it.
            rows = await repository.known_documents(session, source_id=source.id, document_id=job.document_id)
            self.known = {uri: (doc_id, h, status) for uri, doc_id, h, status in rows}
            if job.document_id is not None:
                self.only = frozenset(self.known)
            chunk_rows = await repository.document_chunk_ids(
                session, source_id=source.id, document_id=job.document_id
            )
            self.key_of = await chunk_keys(session, kb.id)
        # Passage key → the copy indexed for it (the smallest chunk id), as far as this sync knows.
        self.kept: dict[str, str] = {}
        for chunk_id, key in self.key_of.items():
            if key not in self.kept or chunk_id < self.kept[key]:
                self.kept[key] = chunk_id
        self.chunks_by_doc: dict[str, set[str]] = {}
        for doc_id, chunk_id in chunk_rows:
            self.chunks_by_doc.setdefault(doc_id, set()).add(chunk_id)
        self.collection = collection_name(self.tenant_id, self.kb_id)
        self.started = time.monotonic()
        status, error = "succeeded", None
        try:
            self.embedder = await asyncio.to_thread(rt.embeddings.get, self.model)
            seen = await self._ingest()
            await self._flush()
            await self._prune(seen)
            await self._reconcile()
        except SourceError as exc:
            status, error = "failed", str(exc)
        except EmbeddingUnavailable as exc:
            status, error = "failed", f"embedding failed: {exc}"
        except Exception as exc:
            log.exception("sync_failed", job_id=self.job_id)
            status, error = "failed", f"{type(exc).__name__}: {exc}"
        if self.changed:
            await self._rebuild_bm25()
        await self._finish(status, error)

    async def _ingest(self) -> set[str]:
        seen: set[str] = set()
        connector = make_connector(
            self.source_type,
            self.config,
            self.rt.settings,
            self.rt.fetcher,
            tenant_id=self.tenant_id,
            only=self.only,
        )
        async for item in connector.documents():
            if connector.expected_total is not None:
                self.progress.counts["documents_total"] = connector.expected_total
            self.progress.documents_seen += 1
            if isinstance(item, FetchFailure):
                if item.gone and item.uri in self.known:
                    # Removed from the site (404/410): pruned below like a document the listing lost.
                    self.progress.documents_done += 1
                    continue
                seen.add(item.uri)
                self.progress.fail(item.uri, item.reason)
                continue
            seen.add(item.uri)
            await self._handle(item)
            if self.pending_chunks >= FLUSH_CHUNKS:
                await self._flush()
            await self._report()
        return seen

    async def _handle(self, doc: FetchedDocument) -> None:
        digest = content_hash(doc)
        known = self.known.get(doc.uri)
        doc_id = known[0] if known else document_id(self.source_id, doc.uri)
        old_ids = self.chunks_by_doc.get(doc_id, set())
        if known and known[1] == digest and known[2] == "ok":
            self.progress.counts["unchanged"] += len(old_ids)
            self.progress.counts["documents_unchanged"] += 1
            self.progress.documents_done += 1
            return
        try:
            parsed = await asyncio.to_thread(parse_document, doc)
            drafts = self.rt.chunker.chunk(
                parsed, source_id=self.source_id, document_uri=doc.uri, url=doc.url
            )
        except ParseError as exc:
            self.progress.fail(doc.uri, str(exc))
            await self._record_failed_document(doc, doc_id, known is not None, str(exc))
            return
        language = text_language(" ".join(d.text for d in drafts[:20]))
        self.pending.append(
            PendingDocument(
                doc.uri,
                doc_id,
                known is not None,
                doc.name[:500],
                parsed.title[:500],
                doc.url,
                digest,
                language,
                drafts,
                old_ids,
            )
        )
        self.pending_chunks += len(drafts)

    async def _record_failed_document(
        self, doc: FetchedDocument, doc_id: str, existing: bool, reason: str
    ) -> None:
        # A document that fails to parse keeps the chunks of its last good version.
        async with self.rt.sessionmaker() as session:
            if existing:
                await repository.mark_document_failed(session, document_id=doc_id, error=reason[:2000])
            else:
                session.add(
                    DocumentRow(
                        id=doc_id,
                        kb_id=self.kb_id,
                        source_id=self.source_id,
                        tenant_id=self.tenant_id,
                        uri=doc.uri[:2000],
                        name=doc.name[:500],
                        title=doc.name[:500],
                        url=doc.url,
                        content_hash="",
                        status="failed",
                        error=reason[:2000],
                        chunk_count=0,
                    )
                )
                self.known[doc.uri] = (doc_id, "", "failed")
            await session.commit()

    async def _flush(self) -> None:
        if not self.pending:
            return
        batch, self.pending, self.pending_chunks = self.pending, [], 0
        new_drafts = [(d, p.doc_id) for p in batch for d in p.drafts if d.id not in p.old_ids]
        for draft, _ in new_drafts:
            self._note_copy(draft)
        # Only the indexed copy of each text is embedded (decided over the whole batch first).
        to_embed = [(d, doc_id) for d, doc_id in new_drafts if self.kept[self.key_of[d.id]] == d.id]
        for pending in batch:
            new_ids = {d.id for d in pending.drafts}
            self.affected.update(self.key_of[cid] for cid in pending.old_ids - new_ids if cid in self.key_of)
            added = len(new_ids - pending.old_ids)
            removed = len(pending.old_ids - new_ids)
            updated = min(added, removed)
            counts = self.progress.counts
            counts["updated"] += updated
            counts["added"] += added - updated
            counts["deleted"] += removed - updated
            counts["unchanged"] += len(new_ids & pending.old_ids)
            counts["documents_updated" if pending.existing else "documents_added"] += 1
        if to_embed:
            vectors = await asyncio.to_thread(
                self.embedder.embed_documents, [d.indexed_text() for d, _ in to_embed]
            )
            metadatas = [{"source_id": self.source_id, "document_id": doc_id} for _, doc_id in to_embed]
            await self.rt.vectors.upsert(self.collection, [d.id for d, _ in to_embed], vectors, metadatas)
            self.progress.chunks_embedded += len(to_embed)
        stale = [cid for p in batch for cid in p.old_ids - {d.id for d in p.drafts}]
        async with self.rt.sessionmaker() as session:
            for pending in batch:
                new_ids = {d.id for d in pending.drafts}
                gone = pending.old_ids - new_ids
                if gone:
                    await repository.delete_chunks(session, chunk_ids=gone)
                values = dict(
                    kb_id=self.kb_id,
                    source_id=self.source_id,
                    tenant_id=self.tenant_id,
                    uri=pending.uri[:2000],
                    name=pending.name,
                    title=pending.title,
                    url=pending.url,
                    content_hash=pending.content_hash,
                    language=pending.language,
                    status="ok",
                    error=None,
                    chunk_count=len(pending.drafts),
                )
                if pending.existing:
                    await repository.update_document(session, document_id=pending.doc_id, values=values)
                else:
                    session.add(DocumentRow(id=pending.doc_id, **values))
                    await session.flush()
                session.add_all(
                    ChunkRow(
                        id=d.id,
                        kb_id=self.kb_id,
                        source_id=self.source_id,
                        document_id=pending.doc_id,
                        ordinal=d.ordinal,
                        text=d.text,
                        title=d.title[:500],
                        heading_path=d.heading_path,
                        url=d.url,
                        language=d.language,
                        tags=self.tags,
                    )
                    for d in pending.drafts
                    if d.id not in pending.old_ids
                )
                # Chunks kept as they were may have moved within the document, or its URL changed.
                for d in pending.drafts:
                    if d.id in pending.old_ids:
                        await repository.place_chunk(session, chunk_id=d.id, ordinal=d.ordinal, url=d.url)
                self.chunks_by_doc[pending.doc_id] = new_ids
                self.known[pending.uri] = (pending.doc_id, pending.content_hash, "ok")
            await session.commit()
        await self.rt.vectors.delete(self.collection, stale)
        self.progress.documents_done += len(batch)
        self.changed = True

    def _note_copy(self, draft: ChunkDraft) -> None:
        """Record a new chunk's text; it becomes the copy to index when no copy with a smaller id is known."""
        key = passage_key(draft.text)
        self.key_of[draft.id] = key
        self.affected.add(key)
        kept = self.kept.get(key)
        if kept is None or draft.id < kept:
            self.kept[key] = draft.id

    async def _prune(self, seen: set[str]) -> None:
        vanished = {uri: v for uri, v in self.known.items() if uri not in seen}
        if not vanished:
            return
        doc_ids = [doc_id for doc_id, _, _ in vanished.values()]
        chunk_ids = [cid for doc_id in doc_ids for cid in self.chunks_by_doc.get(doc_id, set())]
        self.affected.update(self.key_of[cid] for cid in chunk_ids if cid in self.key_of)
        await self.rt.vectors.delete(self.collection, chunk_ids)
        async with self.rt.sessionmaker() as session:
            await repository.delete_documents(session, document_ids=doc_ids)
            await session.commit()
        self.progress.counts["deleted"] += len(chunk_ids)
        self.progress.counts["documents_deleted"] += len(doc_ids)
        self.changed = True

    async def _reconcile(self) -> None:
        """Settle the indexed copy of every passage this sync touched against the committed chunk rows: a
        kept copy removed here (or by a sync of another source meanwhile) hands over to the next one."""
        if not self.affected:
            return
        async with self.rt.sessionmaker() as session:
            embedded = await reconcile_copies(
                session,
                self.rt.vectors,
                self.embedder.embed_documents,
                kb_id=self.kb_id,
                collection=self.collection,
                keys=self.affected,
            )
        self.progress.chunks_embedded += embedded
        self.affected = set()

    async def _rebuild_bm25(self) -> None:
        async with self.rt.sessionmaker() as session:
            await repository.bump_index_version(session, kb_id=self.kb_id)
            await session.commit()
            kb = await session.get(KnowledgeBaseRow, self.kb_id)
            if kb is None:
                return
            version = kb.index_version
            rows = await load_index_rows(session, self.kb_id)
        await self.rt.bm25.rebuild(self.kb_id, version, rows)

    async def _report(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_report < 0.5:
            return
        self.last_report = now
        async with self.rt.sessionmaker() as session:
            await repository.update_job(session, job_id=self.job_id, values=self._progress_values())
            await session.commit()

    def _progress_values(self) -> dict[str, Any]:
        return {
            "documents_seen": self.progress.documents_seen,
            "documents_done": self.progress.documents_done,
            "documents_failed": self.progress.documents_failed,
            "chunks_embedded": self.progress.chunks_embedded,
            "counts": dict(self.progress.counts),
            "failures": list(self.progress.failures),
        }

    async def _finish(self, status: str, error: str | None) -> None:
        now = datetime.now(UTC)
        result = {
            **self.progress.counts,
            "documents_seen": self.progress.documents_seen,
            "documents_failed": self.progress.documents_failed,
            "chunks_embedded": self.progress.chunks_embedded,
            "job_id": self.job_id,
        }
        if error:
            result["error"] = error
        async with self.rt.sessionmaker() as session:
            await repository.update_job(
                session,
                job_id=self.job_id,
                values={"status": status, "error": error, "finished_at": now, **self._progress_values()},
            )
            await repository.record_last_sync(
                session, source_id=self.source_id, at=now, status=status, result=result
            )
            await session.commit()
        log.info("sync_finished", job_id=self.job_id, kb_id=self.kb_id, status=status, **self.progress.counts)


async def load_index_rows(session: Any, kb_id: str) -> list[tuple[str, str, str]]:
    """The BM25 rows of a knowledge base: one per passage text, its indexed copy (the smallest chunk id)."""
    rows = await repository.index_chunks(session, kb_id=kb_id)
    kept = set(kept_copies((cid, text) for cid, _, _, _, text in rows).values())
    return [
        (cid, source_id, compose_indexed_text(title, list(path or []), text))
        for cid, source_id, title, path, text in rows
        if cid in kept
    ]
