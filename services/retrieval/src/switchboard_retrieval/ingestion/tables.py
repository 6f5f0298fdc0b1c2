"""Tables as lines a reader (and the answerer) can quote on their own: one list item per row, each cell
labelled with its column's header ("- Zone: Kazan; Price: 499 ₽; Time: 2–3 days").

A help centre's prices, limits and schedules often live in tables. Cell by cell, a row's figures lose the
column that says what they are, and a long table's later rows lose its header to the chunk before them.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from bs4 import Tag

CELL_SEPARATOR = "; "
ROW_MARK = "- "
MARKDOWN_ROW = re.compile(r"^\s*\|.*\|\s*$")
MARKDOWN_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?\s*$")
MARKDOWN_CELL_SPLIT = re.compile(r"(?<!\\)\|")
RST_GRID_BORDER = re.compile(r"^\s*\+(?:[-=]+\+)+\s*$")


def labelled_rows(header: list[str], rows: list[list[str]]) -> list[str]:
    """Each row as one list item, a cell after its column's header ("- Price: 499 ₽; …"); cells without a
    header (or a table without one) stand alone, and empty cells are left out. A list item keeps its own
    line through chunking and the answerer's reading, as a row should."""
    out = []
    for cells in rows:
        parts = []
        for i, cell in enumerate(cells):
            if not cell:
                continue
            label = header[i] if i < len(header) else ""
            parts.append(f"{label}: {cell}" if label and label != cell else cell)
        if parts:
            out.append(ROW_MARK + CELL_SEPARATOR.join(parts))
    return out


def markdown_tables(text: str) -> str:
    """``text`` with every pipe table (a header row, a ``|---|`` rule, rows) as labelled rows."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        if MARKDOWN_ROW.match(lines[i]) and i + 1 < len(lines) and MARKDOWN_RULE.match(lines[i + 1]):
            header = _markdown_cells(lines[i])
            i += 2
            rows = []
            while i < len(lines) and MARKDOWN_ROW.match(lines[i]):
                rows.append(_markdown_cells(lines[i]))
                i += 1
            out.extend(labelled_rows(header, rows))
            continue
        out.append(lines[i])
        i += 1
    return "\n".join(out)


def _markdown_cells(line: str) -> list[str]:
    inner = line.strip()[1:-1]
    return [" ".join(cell.replace("\\|", "|").split()) for cell in MARKDOWN_CELL_SPLIT.split(inner)]


def html_table(table: Tag) -> list[str]:
    """An HTML table's rows as labelled lines: the header is the ``<thead>`` row, or a first row of ``<th>``
    cells only; a nested table's text stays inside its cell."""
    rows = [row for row in table.find_all("tr") if row.find_parent("table") is table]
    if not rows:
        return []
    first = _html_cells(rows[0])
    header_cells = rows[0].find_all(["td", "th"], recursive=False)
    has_header = rows[0].find_parent("thead") is not None or (
        bool(header_cells) and all(cell.name == "th" for cell in header_cells)
    )
    if has_header:
        return labelled_rows(first, [_html_cells(row) for row in rows[1:]])
    return labelled_rows([], [_html_cells(row) for row in rows])


def _html_cells(row: Tag) -> list[str]:
    return [
        " ".join(cell.get_text(" ", strip=True).split())
        for cell in row.find_all(["td", "th"], recursive=False)
    ]


def rst_grid_table(lines: list[str], inline: Callable[[str], str]) -> list[str]:
    """A reStructuredText grid table (``+---+`` borders, ``|`` rows, ``+===+`` under the header) as labelled
    rows; a cell's lines are joined. Column boundaries are the first border's ``+`` marks, so a cell that
    spans columns is cut at them. ``inline`` renders a cell's markup."""
    border = lines[0].strip()
    indent = len(lines[0]) - len(lines[0].lstrip())
    edges = [indent + i for i, mark in enumerate(border) if mark == "+"]
    header: list[str] = []
    rows: list[list[str]] = []
    block: list[str] = []
    for line in lines[1:]:
        if RST_GRID_BORDER.match(line):
            if block:
                rows.append(_grid_cells(block, edges, inline))
                block = []
            if "=" in line and not header and len(rows) == 1:
                header = rows.pop()
        else:
            block.append(line)
    if block:
        rows.append(_grid_cells(block, edges, inline))
    return labelled_rows(header, rows)


def _grid_cells(block: list[str], edges: list[int], inline: Callable[[str], str]) -> list[str]:
    return [
        inline(" ".join(" ".join(line[start + 1 : end] for line in block).split())).strip()
        for start, end in zip(edges, edges[1:], strict=False)
    ]
