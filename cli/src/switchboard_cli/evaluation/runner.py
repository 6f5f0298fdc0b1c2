"""Runs a question set through the public gateway API exactly as a client would."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx

from switchboard_shared.evaluation.questions import Question
from switchboard_shared.evaluation.scoring import QuestionResult, result_from_turn

UPLOAD_BATCH = 25
TERMINAL_JOB_STATES = frozenset({"succeeded", "failed"})


class EvalError(RuntimeError):
    pass


def corpus_files(corpus: Path) -> list[Path]:
    return sorted(p for p in corpus.rglob("*") if p.is_file() and not p.name.startswith("."))


def content_hash(files: Iterable[Path], root: Path) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(root)).encode())
        digest.update(b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def check_response(response: httpx.Response) -> Any:
    """The JSON body of a successful response; EvalError with the error's code and request id otherwise."""
    if response.status_code >= 400:
        try:
            error = response.json()["error"]
            message = f"{error['code']}: {error['message']} (request {error.get('request_id')})"
        except (ValueError, KeyError, TypeError):
            message = response.text[:300]
        raise EvalError(
            f"{response.request.method} {response.request.url.path} → {response.status_code} {message}"
        )
    return response.json() if response.content else None


class GatewayEval:
    """A client of the public API with a server (or admin) key of one tenant."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def ensure_kb(
        self, corpus: Path, *, progress: Callable[[str], None] = lambda _: None
    ) -> tuple[str, dict[str, str]]:
        """The id of a KB holding exactly ``corpus`` (reused by content hash) and its document id → file name."""
        files = corpus_files(corpus)
        if not files:
            raise EvalError(f"{corpus} has no files")
        name = f"eval-{content_hash(files, corpus)[:16]}"
        page = check_response(self.client.get("/v1/kbs", params={"name": name}))
        existing = [kb for kb in page["items"] if kb["name"] == name]
        if existing and existing[0].get("document_count", 0) >= len(files):
            kb_id = existing[0]["id"]
            progress(f"reusing knowledge base {name}")
        else:
            kb_id = (
                existing[0]["id"]
                if existing
                else check_response(
                    self.client.post(
                        "/v1/kbs", json={"name": name, "description": f"evaluation corpus {corpus.name}"}
                    )
                )["id"]
            )
            jobs = []
            for start in range(0, len(files), UPLOAD_BATCH):
                batch = files[start : start + UPLOAD_BATCH]
                upload = [("files", (path.name, path.read_bytes())) for path in batch]
                accepted = check_response(self.client.post(f"/v1/kbs/{kb_id}/files", files=upload))
                jobs.append(accepted["job"]["id"])
                progress(f"uploaded {start + len(batch)}/{len(files)} files")
            for job_id in dict.fromkeys(jobs):
                self.wait_job(job_id, progress=progress)
        return kb_id, self.document_names(kb_id)

    def wait_job(
        self, job_id: str, *, timeout: float = 1800, progress: Callable[[str], None] = lambda _: None
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = check_response(self.client.get(f"/v1/jobs/{job_id}"))
            progress(
                f"job {job_id[:8]}: {job['status']} {job['documents_done']}/{job['documents_seen']} documents"
            )
            if job["status"] in TERMINAL_JOB_STATES:
                if job["status"] == "failed":
                    raise EvalError(f"ingestion job {job_id} failed: {job.get('error')}")
                return
            time.sleep(0.5)
        raise EvalError(f"ingestion job {job_id} did not finish in {timeout}s")

    def document_names(self, kb_id: str) -> dict[str, str]:
        names: dict[str, str] = {}
        offset = 0
        while True:
            page = check_response(
                self.client.get(f"/v1/kbs/{kb_id}/documents", params={"limit": 500, "offset": offset})
            )
            for doc in page["items"]:
                names[doc["id"]] = doc["name"]
            offset += len(page["items"])
            if not page["items"] or offset >= page["total"]:
                return names

    def scope_assistant(self, kb_id: str, providers: list[str] | None) -> dict[str, Any]:
        """Point the tenant's assistant at the evaluation KB (and providers); returns the old settings."""
        previous: dict[str, Any] = check_response(self.client.get("/v1/assistant"))
        updated = {**previous, "kb_ids": [kb_id]}
        if providers:
            updated["providers"] = providers
        check_response(self.client.put("/v1/assistant", json=updated))
        return previous

    def restore_assistant(self, previous: dict[str, Any]) -> None:
        check_response(self.client.put("/v1/assistant", json=previous))

    def ask(self, question: Question, documents: dict[str, str], *, end_user: str) -> QuestionResult:
        conversation = check_response(
            self.client.post("/v1/conversations", json={"channel": "api", "end_user_id": end_user})
        )
        path = f"/v1/conversations/{conversation['id']}/messages"
        for earlier in question.history:
            check_response(self.client.post(path, json={"text": earlier}))
        started = time.perf_counter()
        try:
            turn = check_response(self.client.post(path, json={"text": question.question}))
        except EvalError as exc:
            return QuestionResult(
                question, [], "", False, (time.perf_counter() - started) * 1000, error=str(exc)
            )
        return result_from_turn(question, turn, documents, (time.perf_counter() - started) * 1000)

    def search(self, kb_id: str, query: str, *, language: str, top_k: int) -> dict[str, Any]:
        """The knowledge base's search response for a query, as chat's search asks for it (JSON: its hits,
        the query as corrected …)."""
        body = {"query": query[:4000], "top_k": max(1, top_k), "language": language}
        response: dict[str, Any] = check_response(self.client.post(f"/v1/kbs/{kb_id}/search", json=body))
        return response

    def embedding_model(self, kb_id: str) -> str:
        return str(check_response(self.client.get(f"/v1/kbs/{kb_id}"))["embedding_model"])
