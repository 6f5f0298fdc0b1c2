"""A customer message that matches one of the tenant's curated answers gets that answer as it stands.

Retrieval matches the message while it searches (the same query vector, no extra call); when the search
response carries a match, no provider is asked: the stream opens with a ``curated`` packet, the answer is
sent as one token, and the stored message and its ``answer_sent`` event name ``curated`` as the provider.
"""

from __future__ import annotations

from switchboard_chat.runtime import Runtime
from switchboard_chat.turn.intake import Prepared
from switchboard_chat.turn.reply import Reply, finish
from switchboard_chat.turn.stream import TurnHandle
from switchboard_shared.contracts.chat import CuratedPacket, TokenPacket
from switchboard_shared.contracts.retrieval import CuratedMatch

CURATED_PROVIDER = "curated"


async def answer(
    runtime: Runtime,
    prepared: Prepared,
    handle: TurnHandle,
    match: CuratedMatch,
    *,
    query: str,
    retrieval_ms: float,
) -> None:
    """Answer with the curated answer and finish the turn."""
    handle.put(CuratedPacket(answer_id=match.answer_id, score=match.score, language=match.language))
    handle.put(TokenPacket(text=match.answer))
    await finish(
        runtime,
        prepared,
        handle,
        Reply(
            answer=match.answer,
            retrieval_ms=retrieval_ms,
            generation_ms=0.0,
            streak=0,
            provider=CURATED_PROVIDER,
            meta={
                "query": query,
                "curated": {
                    "answer_id": match.answer_id,
                    "question": match.question,
                    "score": match.score,
                    "language": match.language,
                },
            },
        ),
    )
