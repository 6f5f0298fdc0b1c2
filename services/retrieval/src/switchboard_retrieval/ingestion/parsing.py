"""Turns fetched bytes into a title and heading-scoped sections: Markdown, reStructuredText, HTML, plain
text, PDF and FAQ files (CSV or JSON question/answer pairs, one section per pair)."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from bs4 import BeautifulSoup, Tag
from langchain_text_splitters import MarkdownHeaderTextSplitter

from switchboard_retrieval.ingestion.tables import (
    RST_GRID_BORDER,
    html_table,
    markdown_tables,
    rst_grid_table,
)

FORMAT_BY_EXTENSION = {
    ".md": "md",
    ".markdown": "md",
    ".rst": "rst",
    ".html": "html",
    ".htm": "html",
    ".txt": "txt",
    ".text": "txt",
    ".pdf": "pdf",
    ".csv": "faq-csv",
    ".json": "faq-json",
}
FORMAT_BY_CONTENT_TYPE = {
    "text/markdown": "md",
    "text/x-rst": "rst",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "text/plain": "txt",
    "application/pdf": "pdf",
    "text/csv": "faq-csv",
    "application/json": "faq-json",
}


class ParseError(ValueError):
    """The document cannot be read; the reason is recorded and the sync goes on."""


@dataclass
class Section:
    heading_path: list[str]
    text: str
    atomic: bool = False  # FAQ pairs stay whole


@dataclass
class ParsedDocument:
    title: str
    sections: list[Section]


@dataclass
class FetchedDocument:
    uri: str
    name: str
    data: bytes
    fmt: str
    url: str | None = None
    title: str | None = None
    breadcrumbs: list[str] = field(default_factory=list)


def format_for(name: str, content_type: str | None = None) -> str | None:
    suffix = PurePosixPath(name.split("?", 1)[0]).suffix.lower()
    if suffix in FORMAT_BY_EXTENSION:
        return FORMAT_BY_EXTENSION[suffix]
    if content_type:
        return FORMAT_BY_CONTENT_TYPE.get(content_type.split(";", 1)[0].strip().lower())
    return None


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1251"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ParseError("the text is neither UTF-8 nor Windows-1251")


def _stem_title(name: str) -> str:
    stem = PurePosixPath(name).stem
    return re.sub(r"[-_]+", " ", stem.split("__")[-1]).strip().capitalize() or name


# ---------------------------------------------------------------- Markdown

_MD_HEADERS = [("#", "h1"), ("##", "h2"), ("###", "h3"), ("####", "h4")]


def parse_markdown(text: str, name: str) -> ParsedDocument:
    text = re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.DOTALL)  # front matter
    text = markdown_tables(text)
    splitter = MarkdownHeaderTextSplitter(_MD_HEADERS, strip_headers=True)
    sections = []
    title = None
    for doc in splitter.split_text(text):
        path = [doc.metadata[key] for _, key in _MD_HEADERS if key in doc.metadata]
        if title is None and "h1" in doc.metadata:
            title = doc.metadata["h1"]
        # The splitter joins a section's lines and marks each blank line it drops with a trailing "  ";
        # the blank line comes back, so a list item and the paragraph after it stay apart.
        body = doc.page_content.replace("  \n", "\n\n").strip()
        if body:
            sections.append(Section(path, body))
    title = title or _stem_title(name)
    # The page title is the document's title, not a heading level of every chunk.
    for section in sections:
        if section.heading_path and section.heading_path[0] == title:
            section.heading_path = section.heading_path[1:]
    return ParsedDocument(title, sections)


# ---------------------------------------------------------------- reStructuredText

_RST_ADORNMENT = re.compile(r"^([=\-~^\"'`#*+:.<>_])\1{2,}\s*$")
_RST_ROLE = re.compile(r":([\w:+-]+):`([^`<]*?)\s*(?:<[^>]*>)?`")
_RST_LINK = re.compile(r"`([^`<]+?)\s*<[^>]+>`__?")
_RST_REF = re.compile(r"`([^`]+)`_{1,2}")
_RST_LITERAL = re.compile(r"``([^`]+)``")
_RST_SUBSTITUTION = re.compile(r"^\.\.\s+\|([^|]+)\|\s+([\w-]+)::\s*(.*)$")
_RST_SUBSTITUTION_REF = re.compile(r"\|([^|\s][^|]*?)\|(?:_{1,2})?")
_RST_AUTO_ITEM = re.compile(r"#\.(?:\s|$)")
_RST_DIRECTIVE = re.compile(r"^(\s*)\.\.\s+([\w:-]+)::\s*(.*)$")
_RST_COMMENT_OR_TARGET = re.compile(r"^\s*\.\.(\s+_[^:]+:.*|\s+\|[^|]+\|.*|\s*$|\s+[^\w].*|\s+\w[^:]*$)")
_SKIP_DIRECTIVES = {
    "toctree",
    "image",
    "figure",
    "raw",
    "include",
    "contents",
    "tabs",
    "only",
    "meta",
    "index",
}


# Directives that describe a named object (Sphinx's ``.. envvar:: READTHEDOCS``, ``.. confval::``, and any
# domain's, ``.. py:function::``): the name is a term, and its description follows.
_DESCRIBED_OBJECTS = {"envvar", "confval", "option", "describe", "object", "program"}


class _AutoNumbering:
    """Auto-numbered list items ("#. Go to Admin") numbered as Sphinx shows them ("1. Go to Admin"); a list
    ends at the first line as far left as its items that is not one of them."""

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}  # indent → items so far

    def number(self, line: str) -> str:
        stripped = line.lstrip()
        if not stripped:
            return line
        indent = len(line) - len(stripped)
        item = _RST_AUTO_ITEM.match(stripped) is not None
        for level in [level for level in self.counts if level > indent or (level == indent and not item)]:
            del self.counts[level]
        if not item:
            return line
        self.counts[indent] = self.counts.get(indent, 0) + 1
        return f"{line[:indent]}{self.counts[indent]}.{stripped[2:]}"


def _rst_role(match: re.Match[str]) -> str:
    """A role's text as Sphinx shows it: a ``:ref:`` to a section labelled by its document
    (``:ref:`versions:Privacy levels```, Sphinx's autosectionlabel) shows the section's title alone."""
    role, text = match.groups()
    if role == "ref" and ":" in text:
        return text.split(":", 1)[1]
    return text


def _rst_substitutions(lines: list[str]) -> dict[str, str]:
    """What each substitution a document defines stands for in text: an image (a badge) for nothing, a
    ``replace::`` for its text, a ``unicode::`` for its characters (``0xA0`` a space)."""
    out = {}
    for line in lines:
        match = _RST_SUBSTITUTION.match(line)
        if match is None:
            continue
        name, kind, value = match.groups()
        if kind == "replace":
            out[name] = _rst_inline(value.strip(), {})
        elif kind == "unicode":
            out[name] = "".join(_unicode_token(token) for token in value.split())
        else:
            out[name] = ""
    return out


def _unicode_token(token: str) -> str:
    code = re.fullmatch(r"(?:0x|U\+|\\x|\\u|&#x)([0-9a-fA-F]+);?", token)
    if code is None:
        return token
    character = chr(int(code.group(1), 16))
    return " " if character.isspace() else character


def _rst_inline(line: str, substitutions: dict[str, str]) -> str:
    if substitutions:
        line = _RST_SUBSTITUTION_REF.sub(lambda m: substitutions.get(m.group(1), m.group(0)), line)
    line = _RST_ROLE.sub(_rst_role, line)
    line = _RST_LINK.sub(r"\1", line)
    line = _RST_REF.sub(r"\1", line)
    return _RST_LITERAL.sub(r"\1", line)


def parse_rst(text: str, name: str) -> ParsedDocument:
    lines = text.splitlines()
    substitutions = _rst_substitutions(lines)
    styles: list[tuple[str, bool]] = []
    path: list[str] = []
    title: str | None = None
    sections: list[Section] = []
    body: list[str] = []
    skip_indent: int | None = None
    # A described object's name (its index in ``body``) and its directive's indent, awaiting its description.
    described: tuple[int, int] | None = None
    numbering = _AutoNumbering()

    def flush() -> None:
        nonlocal described
        content = "\n".join(body).strip()
        content = re.sub(r"\n{3,}", "\n\n", content)
        if content:
            sections.append(Section(list(path), content))
        body.clear()
        described = None

    i = 0
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        # Heading: optional overline, text, underline of at least the text's length.
        overline = (
            bool(_RST_ADORNMENT.match(line)) and i + 2 < len(lines) and lines[i + 2].strip() == line.strip()
        )
        if overline and lines[i + 1].strip():
            heading, char, consumed = lines[i + 1].strip(), line.strip()[0], 3
        elif (
            line.strip()
            and not line.startswith(" ")
            and _RST_ADORNMENT.match(nxt)
            and len(nxt.strip()) >= len(line.strip()) - 1
        ):
            heading, char, consumed = line.strip(), nxt.strip()[0], 2
        else:
            heading = None
        if heading is not None:
            flush()
            style = (char, overline)
            if style not in styles:
                styles.append(style)
            level = styles.index(style)
            heading = _rst_inline(heading, substitutions)
            if level == 0 and title is None:
                title = heading
            path[:] = path[:level] + [heading]
            skip_indent = None
            i += consumed
            continue
        if skip_indent is not None:
            if not line.strip() or len(line) - len(line.lstrip()) > skip_indent:
                i += 1
                continue
            skip_indent = None
        if RST_GRID_BORDER.match(line):
            end = i + 1
            while end < len(lines) and (
                RST_GRID_BORDER.match(lines[end]) or lines[end].lstrip().startswith("|")
            ):
                end += 1
            body.extend(rst_grid_table(lines[i:end], lambda cell: _rst_inline(cell, substitutions)))
            i = end
            continue
        directive = _RST_DIRECTIVE.match(line)
        if directive:
            indent, kind, argument = len(directive.group(1)), directive.group(2).lower(), directive.group(3)
            if kind in _SKIP_DIRECTIVES:
                skip_indent = indent
            elif argument and kind not in {"code-block", "code", "sourcecode", "prompt"}:
                body.append(_rst_inline(argument, substitutions))
                if kind in _DESCRIBED_OBJECTS or ":" in kind:
                    described = (len(body) - 1, indent)
            i += 1
            # Directive options (":key: value") belong to the directive, not the text.
            while i < len(lines) and re.match(r"^\s+:[\w-]+:", lines[i]):
                i += 1
            continue
        if _RST_COMMENT_OR_TARGET.match(line):
            skip_indent = len(line) - len(line.lstrip())
            i += 1
            continue
        line = numbering.number(line)
        if described is not None and line.strip():
            at, directive_indent = described
            described = None
            lead = len(line) - len(line.lstrip())
            if lead > directive_indent:
                # The description's first line carries its object's name: "READTHEDOCS: Whether the build…".
                body[at] = f"{line[:lead]}{body[at]}: {_rst_inline(line.lstrip(), substitutions)}".rstrip()
                del body[at + 1 :]  # the blank lines between the name and its description
                i += 1
                continue
        body.append(_rst_inline(line, substitutions).rstrip())
        i += 1
    flush()
    title = title or _stem_title(name)
    for section in sections:
        if section.heading_path and section.heading_path[0] == title:
            section.heading_path = section.heading_path[1:]
    return ParsedDocument(title, sections)


# ---------------------------------------------------------------- HTML

_BOILERPLATE = [
    "script",
    "style",
    "noscript",
    "nav",
    "header",
    "footer",
    "aside",
    "form",
    "template",
    "svg",
    "iframe",
]
_BOILERPLATE_SELECTORS = [
    "[role=navigation]",
    "[role=banner]",
    "[role=contentinfo]",
    "[aria-hidden=true]",
    ".sidebar",
    ".sphinxsidebar",
    ".wy-nav-side",
    ".related",
    ".breadcrumbs",
    ".headerlink",
    ".cookie-banner",
    "#cookie-banner",
]
_BLOCKS = ["p", "li", "pre", "blockquote", "dt", "dd", "td", "th", "figcaption", "summary"]
_HEADINGS = ["h1", "h2", "h3", "h4", "h5", "h6"]


def _main_content(soup: BeautifulSoup) -> Tag:
    for selector in ("main", "article", "[role=main]", "#content", "#main-content", ".document", ".content"):
        found = soup.select_one(selector)
        if isinstance(found, Tag) and found.get_text(strip=True):
            return found
    return soup.body or soup


def parse_html(text: str, name: str, *, title: str | None = None) -> ParsedDocument:
    soup = BeautifulSoup(text, "html.parser")
    page_title = title
    if page_title is None and soup.title and soup.title.string:
        page_title = soup.title.string.strip()
    for tag in soup(_BOILERPLATE):
        tag.decompose()
    for selector in _BOILERPLATE_SELECTORS:
        for tag in soup.select(selector):
            tag.decompose()
    root = _main_content(soup)
    path: list[str] = []
    levels: list[int] = []
    sections: list[Section] = []
    body: list[str] = []
    first_h1: str | None = None

    def flush() -> None:
        content = "\n".join(body).strip()
        if content:
            sections.append(Section(list(path), content))
        body.clear()

    for element in root.find_all([*_HEADINGS, *_BLOCKS, "table"]):
        if element.name in _HEADINGS:
            flush()
            level = int(element.name[1])
            heading = " ".join(element.get_text(" ", strip=True).split())
            if level == 1 and first_h1 is None:
                first_h1 = heading
            while levels and levels[-1] >= level:
                levels.pop()
                path.pop()
            levels.append(level)
            path.append(heading)
            continue
        if element.find_parent(_BLOCKS) is not None:
            continue  # its text is already part of the enclosing block
        if element.name == "table" or element.find_parent("table") is not None:
            # A table is read row by row (its cells and blocks inside them with it), once, at its top.
            if element.name == "table" and element.find_parent("table") is None:
                body.extend(html_table(element))
            continue
        content = element.get_text("\n" if element.name == "pre" else " ", strip=element.name != "pre")
        if element.name != "pre":
            content = " ".join(content.split())
        if content:
            body.append(f"- {content}" if element.name == "li" else content)
    flush()
    if not sections and root.get_text(strip=True):
        sections.append(Section([], " ".join(root.get_text(" ", strip=True).split())))
    doc_title = page_title or first_h1 or _stem_title(name)
    for section in sections:
        if section.heading_path and section.heading_path[0] in (doc_title, first_h1):
            section.heading_path = section.heading_path[1:]
    return ParsedDocument(doc_title, sections)


# ---------------------------------------------------------------- PDF, plain text, FAQ


def parse_pdf(data: bytes, name: str) -> ParsedDocument:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        meta_title = reader.metadata.title if reader.metadata else None
        sections = []
        for number, page in enumerate(reader.pages, start=1):
            content = (page.extract_text() or "").strip()
            if content:
                sections.append(Section([f"Page {number}"], content))
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise ParseError(f"not a readable PDF: {exc}") from exc
    if not sections:
        raise ParseError("the PDF has no extractable text (scanned images need OCR)")
    return ParsedDocument(str(meta_title).strip() if meta_title else _stem_title(name), sections)


def _faq_pair(row: dict[str, object]) -> tuple[str, str] | None:
    lowered = {str(k).strip().lower(): v for k, v in row.items() if k is not None}
    question = next((lowered[k] for k in ("question", "q", "вопрос") if lowered.get(k)), None)
    answer = next((lowered[k] for k in ("answer", "a", "ответ") if lowered.get(k)), None)
    if question is None or answer is None:
        return None
    return str(question).strip(), str(answer).strip()


def _faq_document(pairs: list[tuple[str, str]], name: str, title: str | None) -> ParsedDocument:
    if not pairs:
        raise ParseError("no question/answer pairs found (columns or keys 'question' and 'answer')")
    sections = [Section([q], f"Q: {q}\nA: {a}", atomic=True) for q, a in pairs]
    return ParsedDocument(title or _stem_title(name), sections)


def parse_faq_csv(text: str, name: str) -> ParsedDocument:
    try:
        sample = text[:4096]
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t") if sample.strip() else csv.excel
        rows = list(csv.DictReader(io.StringIO(text), dialect=dialect))
    except csv.Error as exc:
        raise ParseError(f"not a readable CSV file: {exc}") from exc
    pairs = [pair for row in rows if (pair := _faq_pair(row)) is not None]
    return _faq_document(pairs, name, None)


def parse_faq_json(text: str, name: str) -> ParsedDocument:
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(f"not valid JSON: {exc.msg} at line {exc.lineno}") from exc
    title = None
    items = payload
    if isinstance(payload, dict):
        title = payload.get("title") if isinstance(payload.get("title"), str) else None
        items = payload.get("faq") or payload.get("items") or payload.get("questions") or []
    if not isinstance(items, list):
        raise ParseError("expected a list of {question, answer} objects")
    pairs = [pair for item in items if isinstance(item, dict) and (pair := _faq_pair(item)) is not None]
    return _faq_document(pairs, name, title)


def parse_document(doc: FetchedDocument) -> ParsedDocument:
    if not doc.data.strip():
        raise ParseError("the document is empty")
    if doc.fmt == "pdf":
        parsed = parse_pdf(doc.data, doc.name)
    else:
        text = _decode(doc.data)
        if doc.fmt == "md":
            parsed = parse_markdown(text, doc.name)
        elif doc.fmt == "rst":
            parsed = parse_rst(text, doc.name)
        elif doc.fmt == "html":
            parsed = parse_html(text, doc.name, title=doc.title)
        elif doc.fmt == "txt":
            parsed = ParsedDocument(_stem_title(doc.name), [Section([], text.strip())])
        elif doc.fmt == "faq-csv":
            parsed = parse_faq_csv(text, doc.name)
        elif doc.fmt == "faq-json":
            parsed = parse_faq_json(text, doc.name)
        else:
            raise ParseError(f"unsupported format {doc.fmt!r}")
    if doc.title:
        parsed.title = doc.title
    if doc.breadcrumbs:
        for section in parsed.sections:
            section.heading_path = [*doc.breadcrumbs, *section.heading_path]
    if not parsed.sections:
        raise ParseError("no text found in the document")
    return parsed
