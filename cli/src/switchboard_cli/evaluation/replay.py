"""Capture a question set's turns once, then replay the extractive answerer over them offline.

``switchboard eval --capture FILE`` (with a fleet, as ``switchboard eval`` runs) stores, per question, what
the extractive answerer was given: the customer's language as chat detects it, chat's search query (a
follow-up borrows the earlier user turns' words), the passages retrieval returned for it (the knowledge
base's own search with chat's ``top_k``) and the query as retrieval's spelling correction searched it, beside
the fleet's own answer. ``switchboard eval --replay FILE``
then runs ``ExtractiveProvider.stream`` on those requests in-process, with the chat settings of the
environment (``CHAT_MIN_SUPPORT_SCORE`` …), comparing meanings with the knowledge base's embedding model
loaded here exactly as retrieval's ``/internal/v1/similarity`` does (queries embedded as queries, texts as
documents rounded to float16, cosines to 4 decimals), and scores it as ``switchboard eval`` does. One
experiment takes seconds and needs no fleet; vectors are kept in ``FILE.vectors.npz`` between runs.

The capture is valid for the retrieval it was taken with: re-capture after retrieval changes.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from switchboard_shared.evaluation.questions import Question
from switchboard_shared.evaluation.scoring import QuestionResult

if TYPE_CHECKING:
    from switchboard_chat.providers.base import GenerationRequest
    from switchboard_chat.settings import ChatSettings
    from switchboard_retrieval.embeddings.encoders import Embedder

CAPTURE_VERSION = 1
CITATION = re.compile(r"\[(\d{1,2})\]")


class ReplayError(RuntimeError):
    pass


def chat_view(question: Question, languages: list[str]) -> tuple[str, str]:
    """The customer's language and the search query chat builds for a question and its earlier turns."""
    from switchboard_chat.conversations.window import WindowMessage
    from switchboard_chat.turn.query import search_query
    from switchboard_shared.language import detect_language

    history = [
        WindowMessage(id=str(i), seq=i, role="user", text=text) for i, text in enumerate(question.history)
    ]
    return detect_language(question.question, languages), search_query(question.question, history)


def captured_turn(
    question: Question,
    *,
    language: str,
    query: str,
    hits: list[dict[str, Any]],
    corrected_query: str | None,
    query_words: dict[str, Any] | None,
    fleet: QuestionResult,
) -> dict[str, Any]:
    return {
        "question": question.model_dump(),
        "language": language,
        "search_query": query,
        "hits": hits,
        "corrected_query": corrected_query,
        "query_words": query_words,
        "fleet": {
            "answer": fleet.answer,
            "refused": fleet.refused,
            "support": fleet.support,
            "context": fleet.context,
            "error": fleet.error,
        },
    }


def write_capture(
    path: Path,
    *,
    corpus: str,
    questions: str,
    kb_id: str,
    embedding_model: str,
    documents: dict[str, str],
    turns: list[dict[str, Any]],
) -> None:
    body = {
        "version": CAPTURE_VERSION,
        "corpus": corpus,
        "questions": questions,
        "kb_id": kb_id,
        "embedding_model": embedding_model,
        "documents": documents,
        "turns": turns,
    }
    path.write_text(json.dumps(body, ensure_ascii=False, indent=1), encoding="utf-8")


def load_capture(path: Path) -> dict[str, Any]:
    try:
        body: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReplayError(f"{path}: not a capture ({exc})") from exc
    if body.get("version") != CAPTURE_VERSION or not isinstance(body.get("turns"), list):
        raise ReplayError(f"{path}: not a version-{CAPTURE_VERSION} capture of `switchboard eval --capture`")
    return body


class LocalSimilarity:
    """``/internal/v1/similarity`` computed here with the same model, vectors cached (and kept on disk)."""

    def __init__(self, model: str, cache: Path | None) -> None:
        self._embedder: Embedder | None = None
        self.cache = cache
        self.model = model
        self.queries: dict[str, npt.NDArray[np.float32]] = {}
        self.texts: dict[str, npt.NDArray[np.float16]] = {}
        self.dirty = False
        if cache is not None and cache.exists():
            stored = np.load(cache, allow_pickle=False)
            if str(stored["model"]) == model:
                self.queries = dict(zip(stored["query_keys"].tolist(), stored["query_vectors"], strict=True))
                self.texts = dict(zip(stored["text_keys"].tolist(), stored["text_vectors"], strict=True))

    @property
    def embedder(self) -> Embedder:
        """The model, loaded on the first text the cache does not hold."""
        if self._embedder is None:
            from switchboard_retrieval.embeddings.encoders import EmbeddingRegistry
            from switchboard_retrieval.settings import RetrievalSettings

            self._embedder = EmbeddingRegistry(RetrievalSettings()).get(self.model)
        return self._embedder

    def save(self) -> None:
        if self.cache is None or not self.dirty:
            return
        width = next(iter(self.texts.values())).shape[0] if self.texts else 0
        np.savez(
            self.cache,
            model=np.array(self.model),
            query_keys=np.array(list(self.queries), dtype=str),
            query_vectors=np.array(list(self.queries.values()), dtype=np.float32).reshape(-1, width),
            text_keys=np.array(list(self.texts), dtype=str),
            text_vectors=np.array(list(self.texts.values()), dtype=np.float16).reshape(-1, width),
        )

    async def __call__(self, kb_id: str, queries: list[str], texts: list[str]) -> list[list[float]] | None:  # noqa: ARG002
        for query in queries:
            if query not in self.queries:
                self.queries[query] = np.asarray(self.embedder.embed_query(query), dtype=np.float32).reshape(
                    -1
                )
                self.dirty = True
        missing = list(dict.fromkeys(t for t in texts if t not in self.texts))
        if missing:
            for text, vector in zip(missing, self.embedder.embed_documents(missing), strict=True):
                self.texts[text] = np.asarray(vector).astype(np.float16)
            self.dirty = True
        left = np.vstack([self.queries[q] for q in queries])
        right = np.vstack([self.texts[t] for t in texts]).astype(np.float32)
        scores = left @ right.T
        return [[round(float(value), 4) for value in row] for row in scores]


# (kb_id, queries, texts) → cosines per query, as chat's ``Similarity``; None: shared words decide alone.
SimilarityFn = Callable[[str, list[str], list[str]], Awaitable[list[list[float]] | None]]


def captured_request(
    turn: dict[str, Any], similarity: SimilarityFn | None, settings: ChatSettings
) -> GenerationRequest:
    """What the extractive answerer is given for a captured turn (its question, chat's search query and
    language, the passages retrieval returned), with chat's answering settings."""
    from switchboard_chat.providers.base import GenerationRequest, Passage
    from switchboard_shared.contracts.retrieval import QueryWords, SearchHit

    hits = [SearchHit.model_validate(hit) for hit in turn["hits"]]
    passages = [Passage(index=i, hit=hit) for i, hit in enumerate(hits, start=1)]
    return GenerationRequest(
        system_prompt="",
        history=[],
        question=turn["question"]["question"],
        search_query=turn["search_query"],
        corrected_query=turn.get("corrected_query"),  # captures taken before retrieval reported it have none
        query_words=QueryWords.model_validate(words) if (words := turn.get("query_words")) else None,
        passages=passages,
        language=turn["language"],
        min_support=settings.min_support_score,
        lexical_min_support=settings.lexical_min_support_score,
        cross_language_discount=settings.cross_language_support_discount,
        similarity=similarity if passages else None,
    )


async def replay_turns(
    capture: dict[str, Any],
    similarity: SimilarityFn | None,
    *,
    progress: Callable[[], None] = lambda: None,
) -> list[QuestionResult]:
    """Each captured turn answered again by the extractive provider, scored as ``switchboard eval`` does."""
    from switchboard_chat.providers.base import AnswerVerdict, TextDelta
    from switchboard_chat.providers.extractive import ExtractiveProvider
    from switchboard_chat.providers.texts import text as system_text
    from switchboard_chat.settings import ChatSettings

    settings = ChatSettings()
    provider = ExtractiveProvider()
    documents: dict[str, str] = capture.get("documents") or {}
    results: list[QuestionResult] = []
    for turn in capture["turns"]:
        question = Question.model_validate(turn["question"])
        request = captured_request(turn, similarity, settings)
        passages = request.passages
        hits = [p.hit for p in passages]
        parts: list[str] = []
        no_answer: bool | None = None
        support: float | None = None
        started = time.perf_counter()
        async for event in provider.stream(request):
            if isinstance(event, TextDelta):
                parts.append(event.text)
            elif isinstance(event, AnswerVerdict):
                no_answer, support = event.no_answer, event.support
        answer = "".join(parts).strip() or system_text(turn["language"], "no_answer")
        cited = [int(n) for n in CITATION.findall(answer) if 1 <= int(n) <= len(passages)]
        ranked: list[str] = []
        for document_id in [
            *(passages[n - 1].hit.document_id for n in cited),
            *(h.document_id for h in hits),
        ]:
            name = documents.get(document_id, document_id)
            if name not in ranked:
                ranked.append(name)
        results.append(
            QuestionResult(
                question,
                ranked,
                answer,
                bool(no_answer) if no_answer is not None else not passages,
                (time.perf_counter() - started) * 1000,
                provider=provider.key,
                context=[hit.text for hit in hits],
                support=support,
            )
        )
        progress()
    return results


def replay(path: Path, *, progress: Callable[[], None] = lambda: None) -> tuple[list[QuestionResult], int]:
    """The replayed results and how many answers are the fleet's own answer, word for word."""
    capture = load_capture(path)
    similarity = LocalSimilarity(capture["embedding_model"], path.with_name(path.name + ".vectors.npz"))
    results = asyncio.run(replay_turns(capture, similarity, progress=progress))
    similarity.save()
    same = sum(
        1
        for turn, result in zip(capture["turns"], results, strict=True)
        if turn["fleet"]["answer"].strip() == result.answer
    )
    return results, same
