"""Texts rendered for each messenger: the assistant's Markdown becomes Telegram HTML (or MarkdownV2), WhatsApp's
own ``*bold*`` / ``_italic_`` or plain text; the cited sources are appended as links or titles; and the result
is cut into pieces that fit the platform's limit between blocks, so no piece breaks its markup.

Markdown is parsed with markdown-it-py (raw HTML off, so ``<b>`` in an answer is text); the renderers are ours:
one small ``Formatter`` per wire format."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from markdown_it import MarkdownIt
from markdown_it.token import Token

TextFormat = Literal["plain", "markdown"]
CITATION_MARK = re.compile(r"\[(\d{1,3})\]")
SAFE_LINK = re.compile(r"^(https?://|mailto:|tg://)", re.IGNORECASE)
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("strikethrough")
SOURCES_HEADING = {"en": "Sources", "ru": "Источники"}


@dataclass(frozen=True, slots=True)
class Source:
    index: int
    title: str
    url: str | None = None


@dataclass(frozen=True, slots=True)
class OutboundText:
    """What goes to a customer: the text, whether it is the assistant's Markdown (an operator's typed text and
    the canned replies are plain), the sources the answer cites, and the language for the sources heading."""

    text: str
    format: TextFormat = "plain"
    sources: tuple[Source, ...] = ()
    language: str = "en"

    def to_json(self) -> dict[str, object]:
        return {
            "text": self.text,
            "format": self.format,
            "language": self.language,
            "sources": [{"index": s.index, "title": s.title, "url": s.url} for s in self.sources],
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> OutboundText:
        raw_sources = data.get("sources")
        sources = tuple(
            Source(index=int(s["index"]), title=str(s["title"]), url=s.get("url") or None)
            for s in (raw_sources if isinstance(raw_sources, list) else [])
            if isinstance(s, dict)
        )
        fmt = data.get("format")
        return cls(
            text=str(data.get("text", "")),
            format="markdown" if fmt == "markdown" else "plain",
            sources=sources,
            language=str(data.get("language") or "en"),
        )


class Formatter:
    """Plain text: the base every wire format refines."""

    def escape(self, text: str) -> str:
        return text

    def style(self, kind: str, inner: str) -> str:  # noqa: ARG002 - plain text has no styles
        return inner

    def code(self, text: str) -> str:
        return text

    def pre(self, text: str) -> str:
        return text

    def link(self, label: str, url: str, label_plain: str) -> str:
        return label if label_plain.strip() == url else f"{label} ({self.escape(url)})"

    def quote(self, inner: str) -> str:
        return "\n".join(f"> {line}" for line in inner.split("\n"))


class TelegramHtml(Formatter):
    """https://core.telegram.org/bots/api#html-style: ``<``, ``>`` and ``&`` outside tags become entities."""

    TAGS = {"strong": "b", "em": "i", "s": "s"}

    def escape(self, text: str) -> str:
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    def style(self, kind: str, inner: str) -> str:
        tag = self.TAGS[kind]
        return f"<{tag}>{inner}</{tag}>"

    def code(self, text: str) -> str:
        return f"<code>{self.escape(text)}</code>"

    def pre(self, text: str) -> str:
        return f"<pre>{self.escape(text)}</pre>"

    def link(self, label: str, url: str, label_plain: str) -> str:  # noqa: ARG002
        href = self.escape(url).replace('"', "&quot;")
        return f'<a href="{href}">{label}</a>'

    def quote(self, inner: str) -> str:
        return f"<blockquote>{inner}</blockquote>"


# https://core.telegram.org/bots/api#markdownv2-style: these must be escaped everywhere outside entities.
MARKDOWN_V2_SPECIAL = re.compile(r"([_*\[\]()~`>#+\-=|{}.!\\])")


def escape_markdown_v2(text: str) -> str:
    return MARKDOWN_V2_SPECIAL.sub(r"\\\1", text)


class TelegramMarkdownV2(Formatter):
    """Inside ``code`` / ``pre`` only ````` and ``\\`` are escaped; inside a link's ``(...)`` only ``)`` and ``\\``."""

    MARKS = {"strong": "*", "em": "_", "s": "~"}

    def escape(self, text: str) -> str:
        return escape_markdown_v2(text)

    def style(self, kind: str, inner: str) -> str:
        mark = self.MARKS[kind]
        return f"{mark}{inner}{mark}"

    @staticmethod
    def _code_escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace("`", "\\`")

    def code(self, text: str) -> str:
        return f"`{self._code_escape(text)}`"

    def pre(self, text: str) -> str:
        return f"```\n{self._code_escape(text)}\n```"

    def link(self, label: str, url: str, label_plain: str) -> str:  # noqa: ARG002
        target = url.replace("\\", "\\\\").replace(")", "\\)")
        return f"[{label}]({target})"

    def quote(self, inner: str) -> str:
        return "\n".join(f">{line}" for line in inner.split("\n"))


class WhatsAppText(Formatter):
    """WhatsApp's own formatting: ``*bold*``, ``_italic_``, ``~strike~``, ```` `code` ```` and ```` ``` ```` blocks;
    links are written out (WhatsApp makes them clickable)."""

    MARKS = {"strong": "*", "em": "_", "s": "~"}

    def style(self, kind: str, inner: str) -> str:
        if not inner.strip():
            return inner
        # A marker only formats when it touches the text: keep surrounding spaces outside it.
        stripped = inner.strip()
        lead = inner[: len(inner) - len(inner.lstrip())]
        trail = inner[len(inner.rstrip()) :]
        mark = self.MARKS[kind]
        return f"{lead}{mark}{stripped}{mark}{trail}"

    def code(self, text: str) -> str:
        return f"`{text}`"

    def pre(self, text: str) -> str:
        return f"```{text}```"


PLAIN = Formatter()


def split_text(text: str, limit: int) -> list[str]:
    """Split at paragraph, then line, then word boundaries so each piece fits the platform's limit."""
    text = text.strip()
    pieces: list[str] = []
    while len(text) > limit:
        window = text[:limit]
        cut = -1
        for separator in ("\n\n", "\n", " "):
            cut = window.rfind(separator)
            if cut > limit // 3:
                break
        if cut <= limit // 3:
            cut = limit
        pieces.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if text:
        pieces.append(text)
    return pieces


@dataclass(slots=True)
class Block:
    """One paragraph, list item, heading or code block: rendered, and as plain text for measuring."""

    rendered: str
    plain: str
    separator: str = "\n\n"


def _render_inline(tokens: Sequence[Token], formatter: Formatter) -> tuple[str, str]:
    """Returns (rendered, plain) of an inline token's children."""
    stack: list[tuple[str, list[str], list[str], str | None]] = [("root", [], [], None)]
    for token in tokens:
        _, out, plain, _ = stack[-1]
        kind = token.type
        if kind == "text":
            out.append(formatter.escape(token.content))
            plain.append(token.content)
        elif kind in ("softbreak", "hardbreak"):
            out.append("\n")
            plain.append("\n")
        elif kind == "code_inline":
            out.append(formatter.code(token.content))
            plain.append(token.content)
        elif kind in ("strong_open", "em_open", "s_open"):
            stack.append((kind[:-5], [], [], None))
        elif kind == "link_open":
            stack.append(("link", [], [], str(token.attrs.get("href") or "")))
        elif kind in ("strong_close", "em_close", "s_close", "link_close") and len(stack) > 1:
            name, inner, inner_plain, href = stack.pop()
            rendered, text = "".join(inner), "".join(inner_plain)
            _, out, plain, _ = stack[-1]
            if name == "link":
                if href and SAFE_LINK.match(href):
                    out.append(formatter.link(rendered, href, text))
                    plain.append(PLAIN.link(text, href, text))
                else:
                    out.append(rendered)
                    plain.append(text)
            else:
                out.append(formatter.style(name, rendered))
                plain.append(text)
        elif kind == "image":
            alt = token.content or ""
            out.append(formatter.escape(alt))
            plain.append(alt)
        elif token.content:
            out.append(formatter.escape(token.content))
            plain.append(token.content)
    while len(stack) > 1:  # unclosed styles: keep their text
        _, inner, inner_plain, _ = stack.pop()
        stack[-1][1].extend(inner)
        stack[-1][2].extend(inner_plain)
    return "".join(stack[0][1]), "".join(stack[0][2])


def markdown_blocks(text: str, formatter: Formatter) -> list[Block]:
    tokens = _MARKDOWN.parse(text)
    blocks: list[Block] = []
    lists: list[list[int]] = []  # per open list: [next number] or [] for bullets
    item_prefix: str | None = None
    list_started = False
    quote_depth = 0
    heading = False
    for token in tokens:
        kind = token.type
        if kind == "bullet_list_open":
            lists.append([])
            list_started = True
        elif kind == "ordered_list_open":
            lists.append([int(token.attrs.get("start") or 1)])
            list_started = True
        elif kind in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
        elif kind == "list_item_open":
            indent = "  " * (len(lists) - 1)
            counter = lists[-1] if lists else []
            if counter:
                item_prefix = f"{indent}{counter[0]}. "
                counter[0] += 1
            else:
                item_prefix = f"{indent}• "
        elif kind == "blockquote_open":
            quote_depth += 1
        elif kind == "blockquote_close":
            quote_depth -= 1
        elif kind == "heading_open":
            heading = True
        elif kind == "heading_close":
            heading = False
        elif kind == "inline":
            rendered, plain = _render_inline(token.children or [], formatter)
            if heading:
                rendered = formatter.style("strong", rendered)
            separator = "\n\n"
            if item_prefix is not None:
                rendered, plain = formatter.escape(item_prefix) + rendered, item_prefix + plain
                separator = "\n\n" if list_started and len(lists) == 1 else "\n"
                item_prefix = None
                list_started = False
            elif lists:
                separator = "\n"
            if quote_depth:
                rendered, plain = formatter.quote(rendered), PLAIN.quote(plain)
            blocks.append(Block(rendered, plain, separator))
        elif kind in ("fence", "code_block"):
            code = token.content.rstrip("\n")
            blocks.append(Block(formatter.pre(code), code))
        elif kind == "hr":
            blocks.append(Block(formatter.escape("———"), "———"))
    if blocks:
        blocks[0].separator = ""
    return blocks


def plain_blocks(text: str, formatter: Formatter) -> list[Block]:
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    blocks = [Block(formatter.escape(p.strip("\n")), p.strip("\n")) for p in paragraphs]
    if blocks:
        blocks[0].separator = ""
    return blocks


def cited_sources(text: str, sources: Iterable[Source]) -> list[Source]:
    """The sources the text cites by ``[n]`` (all of them when it cites none by number), each once, in order."""
    unique: dict[int, Source] = {}
    for source in sorted(sources, key=lambda s: s.index):
        unique.setdefault(source.index, source)
    cited = {int(n) for n in CITATION_MARK.findall(text)}
    chosen = [s for i, s in unique.items() if i in cited] if cited & set(unique) else list(unique.values())
    return chosen


def source_blocks(message: OutboundText, formatter: Formatter) -> list[Block]:
    chosen = cited_sources(message.text, message.sources)
    if not chosen:
        return []
    heading = SOURCES_HEADING.get(message.language, SOURCES_HEADING["en"])
    blocks = [Block(formatter.style("strong", formatter.escape(f"{heading}:")), f"{heading}:")]
    for source in chosen:
        title = source.title.strip() or (source.url or f"#{source.index}")
        label, plain_label = formatter.escape(title), title
        prefix = f"[{source.index}] "
        if source.url and SAFE_LINK.match(source.url):
            rendered = formatter.escape(prefix) + formatter.link(label, source.url, plain_label)
            plain = prefix + PLAIN.link(plain_label, source.url, plain_label)
        else:
            rendered, plain = formatter.escape(prefix) + label, prefix + plain_label
        blocks.append(Block(rendered, plain, "\n"))
    return blocks


def utf16_len(text: str) -> int:
    """Telegram counts message length in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def render(message: OutboundText, formatter: Formatter, limit: int) -> list[str]:
    """The message as pieces of at most ``limit`` visible characters, cut between blocks."""
    build = markdown_blocks if message.format == "markdown" else plain_blocks
    blocks = build(message.text, formatter)
    sources = source_blocks(message, formatter)
    if sources and blocks:
        sources[0].separator = "\n\n"
    blocks += sources
    pieces: list[str] = []
    current, current_len = "", 0
    for block in blocks:
        size = utf16_len(block.plain)
        if size > limit:
            # One block longer than a message: its plain text, split at words, each piece escaped.
            if current:
                pieces.append(current)
                current, current_len = "", 0
            pieces.extend(formatter.escape(part) for part in split_text(block.plain, limit))
            continue
        joined = current_len + utf16_len(block.separator) + size if current else size
        if current and joined > limit:
            pieces.append(current)
            current, current_len = block.rendered, size
        elif current:
            current, current_len = current + block.separator + block.rendered, joined
        else:
            current, current_len = block.rendered, size
    if current:
        pieces.append(current)
    return [piece for piece in pieces if piece.strip()]
