"""Properties of the stream codec: any packet encoded by ``encode_sse`` comes back equal from
``decode_sse``, whatever its text holds and however the bytes are cut on the way, for a reader that splits
lines as httpx does (``str.splitlines``: also on U+2028, U+0085 …) and for one that follows the SSE
specification (CR, LF, CRLF only, as browsers do); and packets are yielded as they arrive."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard_shared.contracts.chat import (
    AnyStreamPacket,
    Citation,
    CitationPacket,
    ErrorPacket,
    HandoffInfo,
    HandoffPacket,
    HeartbeatPacket,
    ResetPacket,
    TokenPacket,
    ToolCallPacket,
    adecode_sse,
    decode_sse,
    decode_sse_body,
    encode_sse,
)

PROPERTY = settings(max_examples=200, deadline=None)

any_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)
line_breaking = st.text(alphabet="a\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029 :data\x00é🙂", max_size=30)
texts = any_text | line_breaking
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
packets: st.SearchStrategy[AnyStreamPacket] = st.one_of(
    st.builds(TokenPacket, text=texts),
    st.builds(ErrorPacket, code=texts, message=texts),
    st.builds(ResetPacket, reason=texts),
    st.builds(HeartbeatPacket),
    st.builds(
        ToolCallPacket,
        name=texts,
        arguments=st.dictionaries(texts, json_values, max_size=4),
        status=st.sampled_from(["started", "ok", "error", "refused"]),
    ),
    st.builds(
        CitationPacket,
        citation=st.builds(
            Citation,
            index=st.integers(1, 99),
            chunk_id=texts,
            document_id=texts,
            title=texts,
            url=st.none() | texts,
            snippet=st.none() | texts,
        ),
    ),
    st.builds(HandoffPacket, handoff=st.builds(HandoffInfo, reason=texts, ticket_id=st.none() | texts)),
)


def cut(data: bytes, points: list[int]) -> Iterator[bytes]:
    """The bytes in pieces at arbitrary offsets (mid UTF-8 sequence too), as the network delivers them."""
    start = 0
    for point in sorted({p % (len(data) + 1) for p in points}):
        yield data[start:point]
        start = point
    yield data[start:]


def spec_lines(data: bytes) -> list[str]:
    """Lines as the SSE specification (and so a browser's EventSource or fetch reader) splits them."""
    return re.split(r"\r\n|\r|\n", data.decode("utf-8"))


@PROPERTY
@given(stream=st.lists(packets, min_size=1, max_size=6), points=st.lists(st.integers(0, 10_000), max_size=8))
def test_packets_survive_a_reader_that_splits_lines_like_httpx(
    stream: list[AnyStreamPacket], points: list[int]
) -> None:
    body = b"".join(encode_sse(packet) for packet in stream)
    response = httpx.Response(200, content=cut(body, points), headers={"content-type": "text/event-stream"})
    assert list(decode_sse(response.iter_lines())) == stream


@PROPERTY
@given(stream=st.lists(packets, min_size=1, max_size=6))
def test_packets_survive_a_reader_that_follows_the_specification(stream: list[AnyStreamPacket]) -> None:
    body = b"".join(encode_sse(packet) for packet in stream)
    assert list(decode_sse(spec_lines(body))) == stream
    for packet in stream:
        event, data, blank, end = spec_lines(encode_sse(packet))[:4]
        assert (event, blank, end) == (f"event: {packet.type}", "", "")
        assert data.startswith("data: ")


@PROPERTY
@given(first=packets, rest=st.lists(packets, max_size=3))
def test_a_packet_is_yielded_before_the_stream_ends(
    first: AnyStreamPacket, rest: list[AnyStreamPacket]
) -> None:
    consumed: list[int] = []

    def lines() -> Iterator[str]:
        for index, packet in enumerate([first, *rest]):
            consumed.append(index)
            yield from spec_lines(encode_sse(packet))[:-1]

    assert next(decode_sse(lines())) == first
    assert consumed == [0]


def test_a_packet_of_a_newer_type_is_skipped() -> None:
    lines = [
        "event: shiny",
        'data: {"type": "shiny"}',
        "",
        "event: token",
        'data: {"type": "token", "text": "Hi"}',
    ]
    assert list(decode_sse(lines)) == [TokenPacket(text="Hi")]


@PROPERTY
@given(stream=st.lists(packets, min_size=1, max_size=6))
def test_packets_survive_an_async_reader_of_byte_lines(stream: list[AnyStreamPacket]) -> None:
    """aiohttp's ``response.content`` yields byte lines that keep their ``\\n``."""
    body = b"".join(encode_sse(packet) for packet in stream)

    async def lines() -> AsyncIterator[bytes]:
        for line in body.splitlines(keepends=True):
            yield line

    async def read() -> list[AnyStreamPacket]:
        return [packet async for packet in adecode_sse(lines())]

    assert asyncio.run(read()) == stream


@PROPERTY
@given(stream=st.lists(packets, min_size=1, max_size=6), cut_at=st.integers(1, 10_000))
def test_a_body_cut_short_gives_its_whole_packets(stream: list[AnyStreamPacket], cut_at: int) -> None:
    body = b"".join(encode_sse(packet) for packet in stream)
    ends = [len(b"".join(encode_sse(packet) for packet in stream[: i + 1])) for i in range(len(stream))]
    cut = cut_at % (len(body) + 1)
    whole = [packet for packet, end in zip(stream, ends, strict=True) if end - 2 <= cut]
    decoded = decode_sse_body(body[:cut])
    assert decoded[: len(whole)] == whole
    assert len(decoded) <= len(whole) + 1
