"""The console's only way out: the gateway's public API, called with a tenant's admin key.

Every error answer is turned into ``GatewayError`` carrying the shared error shape
(``{"error": {"code", "message", "request_id"}}``) so pages can say what happened in plain words.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from typing import Any

import httpx

from switchboard_shared.contracts.chat import STREAM_PACKETS, decode_sse

PLAYGROUND_USER = "console-playground"


class GatewayError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        request_id: str | None = None,
        retry_after: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.retry_after = retry_after

    @property
    def not_available(self) -> bool:
        """The fleet does not offer this yet: an unknown route (a bare "Not Found"), not implemented, or
        the owning service is down."""
        bare_404 = self.status == 404 and self.message.strip().lower() in ("not found", "")
        return bare_404 or self.status in (405, 501, 502, 503, 504)

    def plain(self) -> str:
        ref = f" (request {self.request_id})" if self.request_id else ""
        if self.status == 0:
            return f"Cannot reach the gateway: {self.message}"
        if self.status == 401:
            return f"The gateway did not accept the admin key: {self.message}{ref}"
        if self.status == 403:
            return f"Not allowed: {self.message}{ref}"
        if self.status == 429:
            wait = f" Try again in {self.retry_after} s." if self.retry_after else ""
            return f"Rate limited: {self.message}.{wait}"
        if self.not_available:
            return f"Not available yet: {self.message} ({self.code}, HTTP {self.status}){ref}"
        return f"{self.message} ({self.code}, HTTP {self.status}){ref}"


def error_of(response: httpx.Response) -> GatewayError:
    try:
        payload = response.json()
    except ValueError:
        payload = None
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        detail = payload.get("detail") if isinstance(payload, dict) else None
        error = {"code": "http_error", "message": str(detail or response.reason_phrase or "error")}
    return GatewayError(
        response.status_code,
        str(error.get("code", "http_error")),
        str(error.get("message", "")),
        error.get("request_id") or response.headers.get("x-request-id"),
        response.headers.get("retry-after"),
    )


class GatewayClient:
    """Typed calls of the public API; takes its ``httpx.Client`` (base URL and admin key set) from outside."""

    def __init__(self, http: httpx.Client, *, turn_timeout: float = 120.0) -> None:
        self.http = http
        self.turn_timeout = turn_timeout

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise GatewayError(0, "unreachable", str(exc) or type(exc).__name__) from exc
        if response.is_error:
            raise error_of(response)
        if response.status_code == 204 or not response.content:
            return None
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.text

    def get(self, path: str, **params: Any) -> Any:
        return self._call("GET", path, params={k: v for k, v in params.items() if v is not None and v != ""})

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return (
            self._call("POST", path, json=body, **kwargs)
            if body is not None
            else self._call("POST", path, **kwargs)
        )

    def put(self, path: str, body: Any) -> Any:
        return self._call("PUT", path, json=body)

    def delete(self, path: str) -> Any:
        return self._call("DELETE", path)

    # --- who am I ---
    def whoami(self) -> dict[str, Any]:
        result: dict[str, Any] = self.get("/v1/admin/me")
        return result

    # --- conversations (chat) ---
    def start_playground(self, end_user_id: str = PLAYGROUND_USER) -> dict[str, Any]:
        body = {"channel": "api", "end_user_id": end_user_id, "metadata": {"source": "console-playground"}}
        result: dict[str, Any] = self.post("/v1/conversations", body, headers={"X-End-User-ID": end_user_id})
        return result

    def open_conversation(self, end_user_id: str) -> dict[str, Any]:
        """A conversation the console asks in as a service (the turn then shows its passages)."""
        result: dict[str, Any] = self.post(
            "/v1/conversations", {"channel": "api", "end_user_id": end_user_id}
        )
        return result

    def turn(self, conversation_id: str, text: str) -> dict[str, Any]:
        """One message and its whole answer (the turn's JSON result)."""
        timeout = httpx.Timeout(self.http.timeout.connect or 10.0, read=self.turn_timeout)
        result: dict[str, Any] = self._call(
            "POST", f"/v1/conversations/{conversation_id}/messages", json={"text": text}, timeout=timeout
        )
        return result

    def stream_turn(
        self,
        conversation_id: str,
        text: str,
        *,
        providers: list[str] | None,
        end_user_id: str = PLAYGROUND_USER,
    ) -> Iterator[Any]:
        """The typed packets of one answer, as they arrive."""
        body: dict[str, Any] = {"text": text, "client_message_id": uuid.uuid4().hex}
        if providers:
            body["providers"] = providers
        headers = {"Accept": "text/event-stream", "X-End-User-ID": end_user_id}
        timeout = httpx.Timeout(self.http.timeout.connect or 10.0, read=self.turn_timeout)
        try:
            with self.http.stream(
                "POST",
                f"/v1/conversations/{conversation_id}/messages",
                json=body,
                headers=headers,
                timeout=timeout,
            ) as response:
                if response.is_error:
                    response.read()
                    raise error_of(response)
                if "text/event-stream" not in response.headers.get("content-type", ""):
                    response.read()
                    yield STREAM_PACKETS.validate_python({"type": "done", "result": response.json()})
                    return
                yield from decode_sse(response.iter_lines())
        except httpx.HTTPError as exc:
            raise GatewayError(0, "unreachable", str(exc) or type(exc).__name__) from exc

    def conversations(self, **filters: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.get("/v1/conversations", **filters)
        return result

    def conversation(self, conversation_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"/v1/conversations/{conversation_id}")
        return result

    def transitions(self, conversation_id: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.get(f"/v1/conversations/{conversation_id}/transitions")
        return result

    # --- knowledge (retrieval) ---
    def kbs(self) -> list[dict[str, Any]]:
        page = self.get("/v1/kbs", limit=200)
        return list(page["items"])

    def create_kb(self, name: str, description: str) -> dict[str, Any]:
        result: dict[str, Any] = self.post("/v1/kbs", {"name": name, "description": description})
        return result

    def sources(self, kb_id: str) -> list[dict[str, Any]]:
        return list(self.get(f"/v1/kbs/{kb_id}/sources"))

    def create_source(self, kb_id: str, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.post(f"/v1/kbs/{kb_id}/sources", body)
        return result

    def sync_source(self, kb_id: str, source_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.post(f"/v1/kbs/{kb_id}/sources/{source_id}/sync")
        return result

    def upload(self, kb_id: str, files: list[tuple[str, bytes, str]]) -> dict[str, Any]:
        parts = [("files", (name, data, mime or "application/octet-stream")) for name, data, mime in files]
        result: dict[str, Any] = self._call("POST", f"/v1/kbs/{kb_id}/files", files=parts)
        return result

    def job(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"/v1/jobs/{job_id}")
        return result

    def documents(self, kb_id: str, *, limit: int = 200, offset: int = 0) -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"/v1/kbs/{kb_id}/documents", limit=limit, offset=offset)
        return result

    def document_names(self, kb_ids: list[str]) -> dict[str, str]:
        """Document id -> name over these knowledge bases (every page of each)."""
        names: dict[str, str] = {}
        for kb_id in kb_ids:
            offset = 0
            while True:
                page = self.documents(kb_id, limit=200, offset=offset)
                names.update({doc["id"]: doc["name"] for doc in page["items"]})
                offset += len(page["items"])
                if not page["items"] or offset >= page["total"]:
                    break
        return names

    def sync_document(self, kb_id: str, document_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.post(f"/v1/kbs/{kb_id}/documents/{document_id}/sync")
        return result

    def delete_document(self, kb_id: str, document_id: str) -> bool:
        self.delete(f"/v1/kbs/{kb_id}/documents/{document_id}")
        return True

    def chunks(self, kb_id: str, document_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"/v1/kbs/{kb_id}/documents/{document_id}/chunks")
        return result

    def search(
        self, query: str, *, kb_id: str | None = None, top_k: int = 6, mode: str = "hybrid"
    ) -> dict[str, Any]:
        body = {"query": query, "top_k": top_k, "mode": mode}
        path = f"/v1/kbs/{kb_id}/search" if kb_id else "/v1/search"
        result: dict[str, Any] = self.post(path, body)
        return result

    # --- curated answers (retrieval) ---
    def curated(self, **filters: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.get("/v1/curated", limit=200, **filters)
        return result

    def create_curated(self, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.post("/v1/curated", body)
        return result

    def update_curated(self, answer_id: str, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._call("PATCH", f"/v1/curated/{answer_id}", json=body)
        return result

    def delete_curated(self, answer_id: str) -> bool:
        self.delete(f"/v1/curated/{answer_id}")
        return True

    def curated_settings(self) -> dict[str, Any]:
        result: dict[str, Any] = self.get("/v1/curated/settings")
        return result

    def save_curated_settings(self, threshold: float | None) -> dict[str, Any]:
        result: dict[str, Any] = self.put("/v1/curated/settings", {"threshold": threshold})
        return result

    def curated_suggestions(self) -> dict[str, Any]:
        result: dict[str, Any] = self.get("/v1/curated/suggestions", limit=100)
        return result

    def approve_suggestion(self, group_id: str, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.post(f"/v1/curated/suggestions/{group_id}/approve", body)
        return result

    def dismiss_suggestion(self, group_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.post(f"/v1/curated/suggestions/{group_id}/dismiss")
        return result

    def merge_suggestion(self, group_id: str, into: str) -> dict[str, Any]:
        result: dict[str, Any] = self.post(f"/v1/curated/suggestions/{group_id}/merge", {"into": into})
        return result

    # --- handoff queue (integrations) ---
    def handoffs(self, statuses: list[str] | None = None) -> dict[str, Any]:
        params = [("status", s) for s in statuses or []] + [("limit", "100")]
        result: dict[str, Any] = self._call("GET", "/v1/handoffs", params=params)
        return result

    def handoff_action(
        self, handoff_id: str, action: str, operator_id: str, reason: str = ""
    ) -> dict[str, Any]:
        result: dict[str, Any] = self.post(
            f"/v1/handoffs/{handoff_id}/{action}", {"operator_id": operator_id, "reason": reason}
        )
        return result

    def handoff_reply(
        self, handoff_id: str, text: str, operator_id: str, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Send a reply; pass the same ``idempotency_key`` to retry it (it is stored and sent once)."""
        body = {
            "text": text,
            "operator_id": operator_id,
            "idempotency_key": idempotency_key or uuid.uuid4().hex,
        }
        result: dict[str, Any] = self.post(f"/v1/handoffs/{handoff_id}/reply", body)
        return result

    def retry_reply(self, handoff_id: str, reply_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.post(f"/v1/handoffs/{handoff_id}/replies/{reply_id}/retry", {})
        return result

    # --- analytics ---
    def report(self, name: str, start: date, end: date, tz: str = "UTC", **extra: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.get(
            f"/v1/analytics/{name}", start=start.isoformat(), end=end.isoformat(), tz=tz, **extra
        )
        return result

    # --- settings ---
    def keys(self, tenant_id: str, include_revoked: bool = False) -> list[dict[str, Any]]:
        return list(
            self.get(f"/v1/admin/tenants/{tenant_id}/keys", include_revoked=str(include_revoked).lower())
        )

    def create_key(self, tenant_id: str, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.post(f"/v1/admin/tenants/{tenant_id}/keys", body)
        return result

    def revoke_key(self, tenant_id: str, key_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.delete(f"/v1/admin/tenants/{tenant_id}/keys/{key_id}")
        return result

    def assistant(self) -> dict[str, Any]:
        result: dict[str, Any] = self.get("/v1/assistant")
        return result

    def save_assistant(self, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.put("/v1/assistant", body)
        return result
