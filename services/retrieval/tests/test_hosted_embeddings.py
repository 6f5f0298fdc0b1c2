"""The hosted embedding models (OpenAI, Google) against a local server that speaks their documented wire
formats and checks what it receives: knowledge bases on them are ingested and searched through the API,
batches respect the provider's limits, and an upstream failure is a clear 503 or failed job, not a 500."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import random
import re
import struct
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from aiohttp import web

from switchboard_shared.testing.servers import free_port, serve_app

OPENAI_KEY = "sk-test-0123456789abcdef"
# Citations link only to public addresses: the tests find documents by the path mapped onto this one.
PUBLIC = "https://help.example/"
GOOGLE_KEY = "AIzaTest-0123456789abcdef"
OPENAI_MODEL = "text-embedding-3-small"
GOOGLE_MODEL = "text-embedding-004"
OPENAI_DIM = 1536  # text-embedding-3-small
GOOGLE_DIM = 768  # text-embedding-004
OPENAI_MAX_INPUTS = 2048
GOOGLE_MAX_REQUESTS = 100
GOOGLE_TASK_TYPES = {
    "TASK_TYPE_UNSPECIFIED",
    "RETRIEVAL_QUERY",
    "RETRIEVAL_DOCUMENT",
    "SEMANTIC_SIMILARITY",
    "CLASSIFICATION",
    "CLUSTERING",
    "QUESTION_ANSWERING",
    "FACT_VERIFICATION",
    "CODE_RETRIEVAL_QUERY",
}
NATO = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo"]
COLOURS = [
    "amber",
    "beige",
    "coral",
    "denim",
    "ebony",
    "fawn",
    "green",
    "hazel",
    "ivory",
    "jade",
    "khaki",
    "lilac",
    "mauve",
]
STOP_WORDS = {"does", "many", "with", "from", "your", "that", "this", "have", "what", "when", "will", "into"}

DOCS = {
    "en/shipping.md": "# Shipping\n\nOrders are shipped within two business days. Delivery by courier takes "
    "three to five days, and a tracking number is emailed once the parcel leaves the warehouse.\n",
    "en/returns.md": "# Returns\n\nUnused items can be sent back within thirty days for a full refund. "
    "Start the refund from your account page and print the prepaid label.\n",
    "en/passwords.md": "# Passwords\n\nTo reset a forgotten password, open the sign-in page, choose "
    "'Forgot password' and follow the link we email you.\n",
    "ru/dostavka.md": "# Доставка\n\nЗаказы отправляем в течение двух рабочих дней. Доставка курьером "
    "занимает от трёх до пяти дней, трек-номер приходит на почту.\n",
    "ru/vozvrat.md": "# Возврат\n\nНеиспользованный товар можно вернуть в течение тридцати дней, "
    "деньги вернём на карту.\n",
}
QUERIES = [
    ("How many days does courier delivery take?", "en/shipping.md"),
    ("I want a refund for unused items", "en/returns.md"),
    ("Сколько дней занимает доставка курьером?", "ru/dostavka.md"),
    ("Можно ли вернуть товар и получить деньги?", "ru/vozvrat.md"),
]


def bag_of_words(text: str, dim: int) -> list[float]:
    """A deterministic, meaningful embedding: hashed word stems (first five letters), unit length. The last
    component is a constant, so a text without words is not the zero vector (no real API answers that)."""
    vector = [0.0] * dim
    vector[-1] = 0.05
    for word in re.findall(r"\w+", text.lower()):
        if len(word) < 4 or word in STOP_WORDS:
            continue
        digest = hashlib.blake2b(word[:5].encode(), digest_size=4).digest()
        vector[int.from_bytes(digest, "big") % (dim - 1)] += 1.0
    norm = sum(v * v for v in vector) ** 0.5
    return [v / norm for v in vector]


@dataclass
class Call:
    provider: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float
    status: int = 0


@dataclass
class Failure:
    """An answer the server gives instead of embeddings (after ``delay`` seconds)."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


def openai_error(status: int, message: str, kind: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def google_error(status: int, grpc: str, message: str, details: list[Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": status, "message": message, "status": grpc}
    if details:
        error["details"] = details
    return {"error": error}


SERVER_ERROR = {
    "openai": Failure(
        500,
        openai_error(
            500,
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            None,
        ),
    ),
    "google": Failure(
        503, google_error(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")
    ),
}


@dataclass
class FakeProviders:
    """OpenAI's ``POST /v1/embeddings`` and Gemini's ``POST /v1beta/models/{model}:batchEmbedContents`` on
    one local port. Every request is checked as the real API checks it and recorded; ``fail_next`` and
    ``outage`` make it answer with errors instead."""

    port: int = field(default_factory=free_port)
    calls: list[Call] = field(default_factory=list)
    openai_key: str = OPENAI_KEY
    google_key: str = GOOGLE_KEY
    queued: dict[str, list[Failure]] = field(default_factory=lambda: {"openai": [], "google": []})
    outage: dict[str, Failure | None] = field(default_factory=lambda: {"openai": None, "google": None})
    delay: dict[str, float] = field(default_factory=lambda: {"openai": 0.0, "google": 0.0})
    shuffle: random.Random = field(default_factory=lambda: random.Random(7))
    runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def of(self, provider: str, status: int | None = None) -> list[Call]:
        return [c for c in self.calls if c.provider == provider and (status is None or c.status == status)]

    def fail_next(self, provider: str, *failures: Failure) -> None:
        self.queued[provider].extend(failures)

    async def _failure(self, provider: str) -> web.Response | None:
        failure = self.queued[provider].pop(0) if self.queued[provider] else self.outage[provider]
        if failure is None:
            return None
        if failure.delay:
            await asyncio.sleep(failure.delay)
        return web.json_response(failure.body, status=failure.status, headers=failure.headers)

    async def _record(self, provider: str, request: web.Request) -> tuple[Call, Any]:
        raw = await request.read()
        call = Call(provider, request.path, dict(request.headers), None, time.monotonic())
        self.calls.append(call)
        try:
            call.body = (await request.json()) if raw else None
        except ValueError:
            call.body = raw.decode("utf-8", "replace")
        if self.delay[provider]:
            await asyncio.sleep(self.delay[provider])
        return call, call.body

    async def openai(self, request: web.Request) -> web.Response:
        call, body = await self._record("openai", request)
        response = await self._openai(request, body)
        call.status = response.status
        return response

    async def _openai(self, request: web.Request, body: Any) -> web.Response:
        auth = request.headers.get("Authorization", "")
        if not auth:
            return web.json_response(
                openai_error(401, "You didn't provide an API key.", "invalid_request_error", None), status=401
            )
        if auth != f"Bearer {self.openai_key}":
            shown = auth.removeprefix("Bearer ")
            return web.json_response(
                openai_error(
                    401,
                    f"Incorrect API key provided: {shown[:3]}***{shown[-4:]}.",
                    "invalid_request_error",
                    "invalid_api_key",
                ),
                status=401,
            )
        if (failure := await self._failure("openai")) is not None:
            return failure
        if not request.content_type == "application/json" or not isinstance(body, dict):
            return self._openai_bad_request("We could not parse the JSON body of your request.")
        if body.get("model") != OPENAI_MODEL:
            return web.json_response(
                openai_error(
                    404,
                    f"The model `{body.get('model')}` does not exist or you do not have access to it.",
                    "invalid_request_error",
                    "model_not_found",
                ),
                status=404,
            )
        inputs = body.get("input")
        if isinstance(inputs, str):
            inputs = [inputs]
        if (
            not isinstance(inputs, list)
            or not 1 <= len(inputs) <= OPENAI_MAX_INPUTS
            or not all(isinstance(text, str) and text for text in inputs)
        ):
            return self._openai_bad_request("'$.input' is invalid.")
        encoding = body.get("encoding_format", "float")
        if encoding not in ("float", "base64"):
            return self._openai_bad_request(f"'{encoding}' is not one of ['float', 'base64'].")
        dimensions = body.get("dimensions", OPENAI_DIM)
        if not isinstance(dimensions, int) or not 1 <= dimensions <= OPENAI_DIM:
            return self._openai_bad_request("'$.dimensions' is invalid.")
        data: list[dict[str, Any]] = []
        for index, text in enumerate(inputs):
            vector = bag_of_words(text, OPENAI_DIM)[:dimensions]
            norm = sum(v * v for v in vector) ** 0.5 or 1.0
            vector = [v / norm for v in vector]
            embedding: Any = (
                base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
                if encoding == "base64"
                else vector
            )
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        # Items in another order than the inputs: the client must put them back by "index".
        if len(data) > 1:
            while [item["index"] for item in data] == list(range(len(data))):
                self.shuffle.shuffle(data)
        tokens = sum(len(text.split()) for text in inputs)
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": OPENAI_MODEL,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    @staticmethod
    def _openai_bad_request(message: str) -> web.Response:
        return web.json_response(openai_error(400, message, "invalid_request_error", None), status=400)

    async def google(self, request: web.Request) -> web.Response:
        call, body = await self._record("google", request)
        response = await self._google(request, body)
        call.status = response.status
        return response

    async def _google(self, request: web.Request, body: Any) -> web.Response:
        key = request.headers.get("x-goog-api-key")
        if not key:
            return self._google_error(
                403,
                "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers (callers without established identity). "
                "Please use API Key or other form of API consumer identity to call this API.",
            )
        if key != self.google_key:
            return self._google_error(
                400,
                "INVALID_ARGUMENT",
                "API key not valid. Please pass a valid API key.",
                [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                    }
                ],
            )
        model, _, method = request.match_info["name"].partition(":")
        if method != "batchEmbedContents":
            return self._google_error(404, "NOT_FOUND", f"Method {method} not found.")
        if model != GOOGLE_MODEL:
            return self._google_error(
                404,
                "NOT_FOUND",
                f"models/{model} is not found for API version v1beta, or is not supported for embedContent.",
            )
        if (failure := await self._failure("google")) is not None:
            return failure
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            return self._google_error(
                400, "INVALID_ARGUMENT", "* BatchEmbedContentsRequest.requests: required"
            )
        if len(requests) > GOOGLE_MAX_REQUESTS:
            return self._google_error(
                400,
                "INVALID_ARGUMENT",
                f"* BatchEmbedContentsRequest.requests: at most {GOOGLE_MAX_REQUESTS} requests can be in one "
                "batch",
            )
        embeddings = []
        for number, item in enumerate(requests):
            if not isinstance(item, dict) or item.get("model") != f"models/{model}":
                return self._google_error(
                    400,
                    "INVALID_ARGUMENT",
                    f"* BatchEmbedContentsRequest.requests[{number}].model: the model of a request must be "
                    f"the batch's model, models/{model}",
                )
            if item.get("taskType", "TASK_TYPE_UNSPECIFIED") not in GOOGLE_TASK_TYPES:
                return self._google_error(
                    400, "INVALID_ARGUMENT", f"Invalid value at 'requests[{number}].task_type'"
                )
            parts = (item.get("content") or {}).get("parts")
            texts = [p.get("text") for p in parts or [] if isinstance(p, dict)]
            if not texts or not all(isinstance(t, str) and t for t in texts):
                return self._google_error(
                    400, "INVALID_ARGUMENT", f"* BatchEmbedContentsRequest.requests[{number}].content: empty"
                )
            embeddings.append({"values": bag_of_words(" ".join(texts), GOOGLE_DIM)})
        return web.json_response({"embeddings": embeddings})

    @staticmethod
    def _google_error(status: int, grpc: str, message: str, details: list[Any] | None = None) -> web.Response:
        return web.json_response(google_error(status, grpc, message, details), status=status)

    async def start(self) -> FakeProviders:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_post("/v1/embeddings", self.openai)
        app.router.add_post("/v1beta/models/{name}", self.google)
        self.runner = await serve_app(app, self.port)
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest_asyncio.fixture
async def providers() -> AsyncIterator[FakeProviders]:
    fake = await FakeProviders().start()
    yield fake
    await fake.stop()


@pytest.fixture
def hosted(sqlite_service_with: Callable[..., Any], providers: FakeProviders) -> Callable[..., Any]:
    """``async with hosted(**overrides) as svc``: the retrieval app with both hosted models pointed at the
    local providers."""

    def factory(**overrides: Any) -> Any:
        settings: dict[str, Any] = {
            "openai_api_key": OPENAI_KEY,
            "openai_base_url": f"{providers.url}/v1",
            "openai_embedding_model": OPENAI_MODEL,
            "google_api_key": GOOGLE_KEY,
            "google_base_url": f"{providers.url}/v1beta",
            "google_embedding_model": GOOGLE_MODEL,
            **overrides,
        }
        return sqlite_service_with(**settings)

    return factory


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    for name, text in DOCS.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


async def ingest(svc: Any, model: str, path: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    kb = await svc.create_kb(f"{model} kb", embedding_model=model)
    source, job = await svc.add_source(
        kb["id"], {"type": "files", "config": {"path": str(path), "public_base_url": PUBLIC}}
    )
    return kb, source, job


async def search(svc: Any, kb_id: str, query: str, mode: str = "vector") -> httpx.Response:
    response: httpx.Response = await svc.client.post(
        f"/internal/v1/kbs/{kb_id}/search", json={"query": query, "mode": mode, "top_k": 3}
    )
    return response


async def assert_ranking(svc: Any, kb_id: str) -> None:
    for query, expected in QUERIES:
        response = await search(svc, kb_id, query)
        assert response.status_code == 200, response.text
        hits = response.json()["hits"]
        assert hits and hits[0]["url"].endswith(expected), (query, [h["url"] for h in hits])
        assert hits[0]["vector_score"] is not None and hits[0]["vector_score"] > hits[-1]["vector_score"]


def assert_unavailable(response: httpx.Response, *fragments: str) -> str:
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) >= 1
    error = response.json()["error"]
    assert error["code"] == "service_unavailable" and error["request_id"], error
    message: str = error["message"]
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert OPENAI_KEY not in message and GOOGLE_KEY not in message
    return message


@pytest.mark.asyncio
async def test_openai_knowledge_base_is_ingested_and_searched(
    hosted: Callable[..., Any], providers: FakeProviders, docs: Path
) -> None:
    async with hosted() as svc:
        kb, _, job = await ingest(svc, "openai", docs)
        assert job["status"] == "succeeded", job
        assert job["chunks_embedded"] == len(DOCS)
        document_calls = providers.of("openai")
        # One batch of five: the answer's items came back out of order and were put back by index.
        assert [len(c.body["input"]) for c in document_calls] == [len(DOCS)]
        await assert_ranking(svc, kb["id"])

    calls = providers.of("openai")
    assert len(calls) == 1 + len(QUERIES) and all(c.status == 200 for c in calls)
    for call in calls:
        assert call.path == "/v1/embeddings"
        assert call.headers["Authorization"] == f"Bearer {OPENAI_KEY}"
        assert call.headers["Content-Type"] == "application/json"
        assert call.body["model"] == OPENAI_MODEL
    assert [c.body["input"] for c in calls[1:]] == [[query] for query, _ in QUERIES]


@pytest.mark.asyncio
async def test_google_knowledge_base_batches_at_most_100_with_retrieval_task_types(
    hosted: Callable[..., Any], providers: FakeProviders, docs: Path
) -> None:
    filler = 130
    (docs / "notes").mkdir()
    for number in range(filler):
        # Distinct notes: many identical vectors make Chroma's HNSW graph miss the other documents.
        shelf, colour = NATO[number % len(NATO)], COLOURS[number % len(COLOURS)]
        (docs / "notes" / f"note-{number:03}.md").write_text(
            f"# Note {number}\n\nInventory note: {colour} boxes on shelf {shelf}.\n"
        )
    # A configured batch larger than the API allows: the client must split at 100.
    async with hosted(embed_batch_size=256) as svc:
        kb, _, job = await ingest(svc, "google", docs)
        assert job["status"] == "succeeded", job
        total = len(DOCS) + filler
        assert job["chunks_embedded"] == total
        document_calls = providers.of("google")
        sizes = [len(c.body["requests"]) for c in document_calls]
        assert sizes == [100, total - 100], sizes
        await assert_ranking(svc, kb["id"])

    calls = providers.of("google")
    assert all(c.status == 200 for c in calls)
    for call in calls:
        assert call.path == f"/v1beta/models/{GOOGLE_MODEL}:batchEmbedContents"
        assert call.headers["x-goog-api-key"] == GOOGLE_KEY
        assert "Authorization" not in call.headers and "key=" not in call.path
        assert {r["model"] for r in call.body["requests"]} == {f"models/{GOOGLE_MODEL}"}
    documents = [r for c in document_calls for r in c.body["requests"]]
    assert {r["taskType"] for r in documents} == {"RETRIEVAL_DOCUMENT"}
    assert len({r["content"]["parts"][0]["text"] for r in documents}) == total
    queries = calls[len(document_calls) :]
    assert [[r["taskType"] for r in c.body["requests"]] for c in queries] == [["RETRIEVAL_QUERY"]] * len(
        QUERIES
    )
    assert [c.body["requests"][0]["content"]["parts"][0]["text"] for c in queries] == [q for q, _ in QUERIES]

    # The stand-in refuses what the real API refuses, so the sizes above are a real check.
    requests = [{"model": f"models/{GOOGLE_MODEL}", "content": {"parts": [{"text": "x"}]}}] * 101
    async with httpx.AsyncClient(base_url=f"{providers.url}/v1beta") as client:
        too_many = await client.post(
            f"models/{GOOGLE_MODEL}:batchEmbedContents",
            json={"requests": requests},
            headers={"x-goog-api-key": GOOGLE_KEY},
        )
    assert too_many.status_code == 400 and too_many.json()["error"]["status"] == "INVALID_ARGUMENT"


@pytest.mark.asyncio
@pytest.mark.parametrize("model", ["openai", "google"])
async def test_upstream_outage_on_search_is_503_and_search_recovers(
    hosted: Callable[..., Any], providers: FakeProviders, docs: Path, model: str
) -> None:
    async with hosted() as svc:
        kb, _, job = await ingest(svc, model, docs)
        assert job["status"] == "succeeded", job
        before = len(providers.of(model))
        providers.outage[model] = SERVER_ERROR[model]
        status = SERVER_ERROR[model].status
        for mode in ("vector", "hybrid"):
            response = await search(svc, kb["id"], QUERIES[0][0], mode)
            assert_unavailable(response, f"HTTP {status}", "after 3 attempts")
        # Retried (1 + http_retries per search), then given up.
        assert len(providers.of(model, status)) == 6
        # Across KBs too: the tenant-wide search is a 503 when the only vector ranking is unavailable.
        everywhere = await svc.client.post(
            "/internal/v1/search", json={"query": QUERIES[0][0], "mode": "vector"}
        )
        assert_unavailable(everywhere, "embedding model is unavailable")
        providers.outage[model] = None
        await assert_ranking(svc, kb["id"])
        assert len(providers.of(model, 200)) == before + len(QUERIES)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("model", "status", "hint"),
    [("openai", 401, "RETRIEVAL_OPENAI_API_KEY"), ("google", 400, "RETRIEVAL_GOOGLE_API_KEY")],
)
async def test_rejected_key_is_not_retried_and_says_which_setting(
    hosted: Callable[..., Any], providers: FakeProviders, docs: Path, model: str, status: int, hint: str
) -> None:
    async with hosted() as svc:
        kb, source, job = await ingest(svc, model, docs)
        assert job["status"] == "succeeded", job
        # The key is revoked at the provider.
        setattr(providers, f"{model}_key", "rotated-key")
        before = len(providers.of(model))
        message = assert_unavailable(await search(svc, kb["id"], QUERIES[0][0]), f"HTTP {status}", hint)
        assert "API key" in message
        assert len(providers.of(model)) == before + 1, "an auth error must not be retried"

        # Ingestion with the revoked key: a failed job with a readable reason.
        (docs / "en" / "gift.md").write_text("# Gift wrapping\n\nWe wrap presents in recycled paper.\n")
        failed = await svc.sync(kb["id"], source["id"])
        assert failed["status"] == "failed", failed
        assert failed["error"].startswith("embedding failed:") and hint in failed["error"], failed["error"]
        assert OPENAI_KEY not in failed["error"] and GOOGLE_KEY not in failed["error"]

        setattr(providers, f"{model}_key", OPENAI_KEY if model == "openai" else GOOGLE_KEY)
        again = await svc.sync(kb["id"], source["id"])
        assert again["status"] == "succeeded" and again["chunks_embedded"] == 1, again
        hits = (await search(svc, kb["id"], "wrap presents in paper")).json()["hits"]
        assert hits[0]["url"].endswith("gift.md")


def rate_limited(model: str, seconds: float) -> Failure:
    if model == "openai":
        return Failure(
            429,
            openai_error(
                429, "Rate limit reached for requests per min (RPM). Please try again.", "requests", None
            ),
            headers={"Retry-After": f"{seconds:g}"},
        )
    # Gemini says when to come back in the body (google.rpc.RetryInfo), not in a header.
    return Failure(
        429,
        google_error(
            429,
            "RESOURCE_EXHAUSTED",
            "Resource has been exhausted (e.g. check quota).",
            [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{seconds:g}s"}],
        ),
    )


@pytest.mark.asyncio
@pytest.mark.parametrize("model", ["openai", "google"])
async def test_rate_limit_is_waited_out_for_as_long_as_the_provider_asks(
    hosted: Callable[..., Any], providers: FakeProviders, docs: Path, model: str
) -> None:
    async with hosted() as svc:
        kb, source, job = await ingest(svc, model, docs)
        assert job["status"] == "succeeded", job

        providers.fail_next(model, rate_limited(model, 1))
        before = len(providers.of(model))
        response = await search(svc, kb["id"], QUERIES[2][0])
        assert response.status_code == 200, response.text
        assert response.json()["hits"][0]["url"].endswith(QUERIES[2][1])
        limited, answered = providers.of(model)[before:]
        assert (limited.status, answered.status) == (429, 200)
        assert answered.at - limited.at >= 0.95, "the retry came before the provider's Retry-After"

        # A limit that lifts only in two minutes: the search does not wait for it, it says so at once.
        providers.fail_next(model, rate_limited(model, 120))
        started = time.monotonic()
        response = await search(svc, kb["id"], QUERIES[2][0])
        assert time.monotonic() - started < 5
        assert_unavailable(response, "rate limited", "HTTP 429", "retry after 120 s")

        # Ingestion waits out a short limit without failing the job.
        (docs / "en" / "gift.md").write_text("# Gift wrapping\n\nWe wrap presents in recycled paper.\n")
        providers.fail_next(model, rate_limited(model, 0.5), rate_limited(model, 0.5))
        synced = await svc.sync(kb["id"], source["id"])
        assert synced["status"] == "succeeded" and synced["chunks_embedded"] == 1, synced


@pytest.mark.asyncio
@pytest.mark.parametrize("model", ["openai", "google"])
async def test_ingestion_retries_a_flaky_provider_and_fails_readably_on_an_outage(
    hosted: Callable[..., Any], providers: FakeProviders, docs: Path, model: str
) -> None:
    status = SERVER_ERROR[model].status
    async with hosted() as svc:
        # Two failures, then an answer: the job does not notice.
        providers.fail_next(model, SERVER_ERROR[model], SERVER_ERROR[model])
        kb, source, job = await ingest(svc, model, docs)
        assert job["status"] == "succeeded", job
        assert [c.status for c in providers.of(model)] == [status, status, 200]

        # A lasting outage: the job fails with the provider's reason, nothing half-indexed is kept.
        providers.calls.clear()
        providers.outage[model] = SERVER_ERROR[model]
        (docs / "en" / "gift.md").write_text("# Gift wrapping\n\nWe wrap presents in recycled paper.\n")
        failed = await svc.sync(kb["id"], source["id"])
        assert failed["status"] == "failed", failed
        provider = "OpenAI" if model == "openai" else "Google"
        expected = f"embedding failed: {provider} embeddings failed after 5 attempts: HTTP {status}"
        assert failed["error"].startswith(expected), failed["error"]
        assert SERVER_ERROR[model].body["error"]["message"] in failed["error"]
        assert len(providers.of(model)) == 5
        documents = (await svc.client.get(f"/internal/v1/kbs/{kb['id']}/documents")).json()["items"]
        assert all(not d["uri"].endswith("gift.md") for d in documents)

        # The provider is back: the next sync picks up what the failed one could not.
        providers.outage[model] = None
        again = await svc.sync(kb["id"], source["id"])
        assert again["status"] == "succeeded" and again["chunks_embedded"] == 1, again
        hits = (await search(svc, kb["id"], "wrap presents in paper")).json()["hits"]
        assert hits[0]["url"].endswith("gift.md")


@pytest.mark.asyncio
async def test_slow_provider_does_not_block_the_service_and_a_stalled_call_is_retried(
    hosted: Callable[..., Any], providers: FakeProviders, docs: Path
) -> None:
    async with hosted(http_read_timeout=1.0) as svc:
        kb, _, job = await ingest(svc, "openai", docs)
        assert job["status"] == "succeeded", job

        # While the provider takes 0.8 s for the query embedding, the service answers other requests.
        providers.delay["openai"] = 0.8
        pending = asyncio.create_task(search(svc, kb["id"], QUERIES[0][0]))
        await asyncio.sleep(0.2)
        started = time.monotonic()
        health = await svc.client.get("/healthz")
        listed = await svc.client.get("/internal/v1/kbs")
        assert health.status_code == 200 and listed.status_code == 200
        assert time.monotonic() - started < 0.4
        assert not pending.done()
        response = await pending
        assert response.status_code == 200 and response.json()["hits"][0]["url"].endswith(QUERIES[0][1])
        providers.delay["openai"] = 0.0

        # A call that stalls past the read timeout is abandoned and tried again.
        before = len(providers.of("openai"))
        providers.fail_next("openai", Failure(200, {}, delay=3.0))
        started = time.monotonic()
        response = await search(svc, kb["id"], QUERIES[0][0])
        assert response.status_code == 200, response.text
        assert 0.9 < time.monotonic() - started < 2.5
        assert len(providers.of("openai")) == before + 2
