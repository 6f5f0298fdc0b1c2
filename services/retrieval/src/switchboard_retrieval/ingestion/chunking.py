"""Structure-aware chunking: sections split on headings come in, then each is split by size with overlap.
Chunk ids are stable hashes of (source, document, heading path, content): re-syncing finds what changed."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from langchain_text_splitters import RecursiveCharacterTextSplitter

from switchboard_retrieval.ingestion.parsing import ParsedDocument
from switchboard_shared.language import text_language


@dataclass
class ChunkDraft:
    id: str
    ordinal: int
    text: str
    title: str
    heading_path: list[str]
    url: str | None
    language: str | None

    def indexed_text(self) -> str:
        """What is embedded and BM25-indexed: the title and heading path give the passage its context."""
        return compose_indexed_text(self.title, self.heading_path, self.text)


def compose_indexed_text(title: str, heading_path: list[str], text: str) -> str:
    head = " > ".join([title, *heading_path]) if title else " > ".join(heading_path)
    return f"{head}\n{text}" if head else text


def chunk_id(source_id: str, document_uri: str, heading_path: list[str], text: str, occurrence: int) -> str:
    key = "\x1f".join([source_id, document_uri, "\x1e".join(heading_path), text, str(occurrence)])
    return hashlib.sha1(key.encode("utf-8")).hexdigest()


class Chunker:
    def __init__(self, *, chunk_size: int, chunk_overlap: int) -> None:
        self.splitter = RecursiveCharacterTextSplitter(
            chunk_size=chunk_size,
            chunk_overlap=min(chunk_overlap, chunk_size // 2),
            separators=["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""],
            keep_separator="end",
        )

    def chunk(
        self, parsed: ParsedDocument, *, source_id: str, document_uri: str, url: str | None
    ) -> list[ChunkDraft]:
        drafts: list[ChunkDraft] = []
        seen: dict[tuple[str, ...], int] = {}
        for section in parsed.sections:
            pieces = [section.text] if section.atomic else self.splitter.split_text(section.text)
            for piece in pieces:
                text = piece.strip()
                if not text:
                    continue
                key = (*section.heading_path, text)
                occurrence = seen.get(key, 0)
                seen[key] = occurrence + 1
                drafts.append(
                    ChunkDraft(
                        id=chunk_id(source_id, document_uri, section.heading_path, text, occurrence),
                        ordinal=len(drafts),
                        text=text,
                        title=parsed.title,
                        heading_path=list(section.heading_path),
                        url=url,
                        language=text_language(text),
                    )
                )
        return drafts
