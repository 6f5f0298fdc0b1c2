"""Parsing of every format, structure-aware chunking with stable ids, tokenisation, snippets and fusion."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from switchboard_retrieval.index.hybrid import fuse_rankings
from switchboard_retrieval.index.text import highlight, tokenize
from switchboard_retrieval.ingestion.chunking import Chunker
from switchboard_retrieval.ingestion.connectors import storage_to_html
from switchboard_retrieval.ingestion.parsing import FetchedDocument, ParseError, format_for, parse_document
from switchboard_shared.language import text_language

_spec = importlib.util.spec_from_file_location("retrieval_pdfutil", Path(__file__).parent / "pdfutil.py")
assert _spec and _spec.loader
pdfutil = importlib.util.module_from_spec(_spec)
sys.modules["retrieval_pdfutil"] = pdfutil
_spec.loader.exec_module(pdfutil)


def doc(name: str, data: str | bytes, fmt: str | None = None) -> FetchedDocument:
    raw = data.encode() if isinstance(data, str) else data
    return FetchedDocument(uri=name, name=name, data=raw, fmt=fmt or format_for(name) or "txt")


def test_markdown_sections_keep_heading_paths() -> None:
    parsed = parse_document(
        doc("a.md", "# Shipping\n\nIntro.\n\n## Prices\n\nCourier 349.\n\n### Moscow\n\nNext day.\n")
    )
    assert parsed.title == "Shipping"
    assert [(s.heading_path, s.text) for s in parsed.sections] == [
        ([], "Intro."),
        (["Prices"], "Courier 349."),
        (["Prices", "Moscow"], "Next day."),
    ]


def test_markdown_paragraphs_stay_apart_from_the_list_before_them() -> None:
    md = "# Delivery\n\n## Prices\n\n- Courier: 349 ₽\n- Pickup: 149 ₽\n\nOrders over 3,000 ₽ ship free.\nAll regions.\n"
    text = parse_document(doc("d.md", md)).sections[0].text
    assert text == "- Courier: 349 ₽\n- Pickup: 149 ₽\n\nOrders over 3,000 ₽ ship free.\nAll regions."


def test_rst_headings_roles_and_directives() -> None:
    rst = """
.. _label:

Build process
=============

Read the :doc:`guide </builds>` and ``config``, see `Sphinx <https://sphinx.org>`__.

.. toctree::
   :maxdepth: 1

   hidden/page

Cancelling
----------

.. note:: Builds can be cancelled.

.. code-block:: yaml

   version: 2
"""
    parsed = parse_document(doc("x.rst", rst))
    assert parsed.title == "Build process"
    intro, cancelling = parsed.sections
    assert intro.heading_path == [] and "Read the guide and config, see Sphinx." in intro.text
    assert "hidden/page" not in intro.text and "label" not in intro.text
    assert cancelling.heading_path == ["Cancelling"]
    assert "Builds can be cancelled." in cancelling.text and "version: 2" in cancelling.text


def test_rst_references_to_labelled_sections_show_the_sections_title() -> None:
    rst = """Builds
======

See :ref:`config-file/v2:build.jobs` and :ref:`the FAQ <faq>`.

* :ref:`faq:My documentation requires additional dependencies`
* :ref:`custom-label`, :doc:`/guides/reproducible-builds`
"""
    text = parse_document(doc("x.rst", rst)).sections[0].text
    assert "See build.jobs and the FAQ." in text
    assert "* My documentation requires additional dependencies" in text
    assert "* custom-label, /guides/reproducible-builds" in text


def test_an_rst_object_description_keeps_the_objects_name_with_its_description() -> None:
    rst = """Variables
=========

.. envvar:: READTHEDOCS

    Whether the build is running inside Read the Docs.

.. py:function:: build(version)
   :noindex:

   Builds one version.

.. note:: Builds can be cancelled.
"""
    text = parse_document(doc("x.rst", rst)).sections[0].text
    assert "READTHEDOCS: Whether the build is running inside Read the Docs." in text
    assert "build(version): Builds one version." in text
    assert "Builds can be cancelled." in text and "note" not in text


def test_an_rst_object_without_a_description_does_not_take_the_next_paragraph() -> None:
    rst = "Variables\n=========\n\n.. envvar:: SECRET\n\nSet tokens in the dashboard.\n"
    text = parse_document(doc("x.rst", rst)).sections[0].text
    assert text == "SECRET\n\nSet tokens in the dashboard."


def test_rst_substitutions_show_what_the_document_defines_them_as() -> None:
    rst = """Badges
======

|green| |nbsp| |red|

|product| shows a badge; |undefined| stays as written, and so does ``a || b``.

.. |green| image:: https://example.com/passing.svg
.. |red| image:: https://example.com/failing.svg
.. |nbsp| unicode:: 0xA0
.. |product| replace:: Read the **Docs**
"""
    text = parse_document(doc("x.rst", rst)).sections[0].text
    assert "green" not in text and "red|" not in text and "nbsp" not in text
    assert "Read the **Docs** shows a badge; |undefined| stays as written, and so does a || b." in text


def test_rst_auto_numbered_items_are_numbered_and_each_list_starts_at_one() -> None:
    rst = """Domains
=======

#. Go to Admin.
#. Click on Domains,
   then on Add.

   #. A nested step.
   #. Another.

#. Click Confirm.

Then:

#. Build again.
"""
    text = parse_document(doc("x.rst", rst)).sections[0].text
    assert "1. Go to Admin.\n2. Click on Domains,\n   then on Add." in text
    assert "   1. A nested step.\n   2. Another." in text
    assert "3. Click Confirm." in text
    assert "Then:\n\n1. Build again." in text
    assert "#." not in text


def test_a_html_table_is_read_row_by_row_each_cell_under_its_header() -> None:
    html = """<html><body><main><h1>Delivery</h1><p>We deliver across Russia.</p>
    <table><thead><tr><th>Zone</th><th>Price</th><th>Time</th></tr></thead><tbody>
    <tr><td>Moscow</td><td>349 ₽</td><td>next day</td></tr>
    <tr><td>Kazan</td><td><p>499 ₽</p></td><td></td></tr></tbody></table>
    <h2>Pickup</h2><table><tr><td>Pickup point</td><td>149 ₽ <table><tr><td>in 3 days</td></tr></table></td></tr>
    </table></main></body></html>"""
    parsed = parse_document(doc("d.html", html))
    assert parsed.sections[0].text == (
        "We deliver across Russia.\n- Zone: Moscow; Price: 349 ₽; Time: next day\n- Zone: Kazan; Price: 499 ₽"
    )
    assert parsed.sections[1].heading_path == ["Pickup"]
    assert parsed.sections[1].text == "- Pickup point; 149 ₽ in 3 days"


def test_a_markdown_pipe_table_is_read_row_by_row_each_cell_under_its_header() -> None:
    md = "# Delivery\n\n| Zone | Price \\| VAT |\n|:-----|------:|\n| Moscow | 349 ₽ |\n| Kazan | 499 ₽ |\n"
    text = parse_document(doc("d.md", md)).sections[0].text
    assert "- Zone: Moscow; Price | VAT: 349 ₽" in text and "- Zone: Kazan; Price | VAT: 499 ₽" in text
    assert "---" not in text


def test_an_rst_grid_table_is_read_row_by_row_each_cell_under_its_header() -> None:
    rst = """Support matrix
==============

+----------+-----------+-------+
|          | git       | svn   |
+==========+===========+=======+
| Tags     | Yes       | No    |
+----------+-----------+-------+
| Default  | ``main``, | trunk |
| branch   | or master |       |
+----------+-----------+-------+

After the table.
"""
    text = parse_document(doc("x.rst", rst)).sections[0].text
    assert "- Tags; git: Yes; svn: No\n- Default branch; git: main, or master; svn: trunk" in text
    assert "After the table." in text and "+---" not in text


def test_html_main_content_only() -> None:
    html = """<html><head><title>Returns | Shop</title><script>var x=1</script></head><body>
    <nav><a href="/">Home</a> Menu</nav><header>Big banner</header>
    <main><h1>Returns</h1><p>Send items back within 30 days.</p>
    <h2>Refunds</h2><ul><li><p>Cards: 3 days</p></li><li>Points: instantly</li></ul></main>
    <footer>Copyright</footer></body></html>"""
    parsed = parse_document(doc("r.html", html))
    assert parsed.title == "Returns | Shop"
    text = " ".join(s.text for s in parsed.sections)
    assert "30 days" in text and "Cards: 3 days" in text and "Points: instantly" in text
    assert "Menu" not in text and "Big banner" not in text and "Copyright" not in text and "var x" not in text
    assert parsed.sections[-1].heading_path == ["Refunds"]
    assert text.count("Cards: 3 days") == 1


def test_pdf_pages() -> None:
    parsed = parse_document(
        doc("manual.pdf", pdfutil.make_pdf(["Warranty is 12 months", "Repairs take 45 days"], "Manual"))
    )
    assert parsed.title == "Manual"
    assert [s.heading_path for s in parsed.sections] == [["Page 1"], ["Page 2"]]
    assert "45 days" in parsed.sections[1].text


def test_bad_pdf_and_empty_files_are_parse_errors() -> None:
    with pytest.raises(ParseError):
        parse_document(doc("x.pdf", b"%PDF-1.4 garbage"))
    with pytest.raises(ParseError):
        parse_document(doc("x.md", "   \n"))
    with pytest.raises(ParseError):
        parse_document(doc("faq.json", "{not json"))
    with pytest.raises(ParseError, match="question"):
        parse_document(doc("faq.csv", "a_col,b_col\n1,2\n"))


def test_faq_csv_and_json_make_one_chunk_per_pair() -> None:
    csv_text = (
        'question;answer\nDo you ship abroad?;No, only Russia.\nGift cards?;"Yes; from 500, valid 3 years"\n'
    )
    parsed = parse_document(doc("faq.csv", csv_text))
    assert [s.heading_path for s in parsed.sections] == [["Do you ship abroad?"], ["Gift cards?"]]
    chunks = Chunker(chunk_size=100, chunk_overlap=10).chunk(
        parsed, source_id="s", document_uri="faq.csv", url=None
    )
    assert len(chunks) == 2 and chunks[1].text == "Q: Gift cards?\nA: Yes; from 500, valid 3 years"
    parsed = parse_document(
        doc("faq.json", '{"title": "FAQ", "faq": [{"вопрос": "Где заказ?", "ответ": "В приложении"}]}')
    )
    assert parsed.title == "FAQ" and parsed.sections[0].text == "Q: Где заказ?\nA: В приложении"


def test_cp1251_text_is_decoded() -> None:
    parsed = parse_document(doc("old.txt", "Возврат товара".encode("cp1251")))
    assert parsed.sections[0].text == "Возврат товара"


def test_chunk_ids_are_stable_and_content_addressed() -> None:
    chunker = Chunker(chunk_size=200, chunk_overlap=20)
    text = "# T\n\n## A\n\n" + ("Sentence about returns. " * 30) + "\n\n## B\n\nShort."
    first = chunker.chunk(parse_document(doc("t.md", text)), source_id="s", document_uri="t.md", url=None)
    second = chunker.chunk(parse_document(doc("t.md", text)), source_id="s", document_uri="t.md", url=None)
    assert [c.id for c in first] == [c.id for c in second] and len(first) > 3
    assert all(len(c.text) <= 200 for c in first)
    edited = chunker.chunk(
        parse_document(doc("t.md", text.replace("Short.", "Shorter."))),
        source_id="s",
        document_uri="t.md",
        url=None,
    )
    assert {c.id for c in first} ^ {c.id for c in edited} == {first[-1].id, edited[-1].id}
    other_source = chunker.chunk(
        parse_document(doc("t.md", text)), source_id="s2", document_uri="t.md", url=None
    )
    assert not {c.id for c in first} & {c.id for c in other_source}
    duplicated = chunker.chunk(
        parse_document(doc("d.md", "same\n\nsame")), source_id="s", document_uri="d.md", url=None
    )
    assert len({c.id for c in duplicated}) == len(duplicated)
    assert first[0].indexed_text().startswith("T > A\n")


def test_tokenize_stems_per_script_and_drops_stopwords() -> None:
    assert tokenize("Как вернуть товары? Returning the goods, ёлка") == [
        "вернут",
        "товар",
        "return",
        "good",
        "елк",
    ]
    assert tokenize("вернуть") == tokenize("вернуть")
    assert text_language("Где мой заказ Pelican?") == "ru" and text_language("Where is it?") == "en"
    assert text_language("12345") is None


def test_highlight_marks_query_terms_by_stem() -> None:
    text = "Intro text. " * 40 + "You can return goods within 30 days; returns are free. " + "Tail. " * 40
    snippet = highlight(text, "how do I return an item", width=120)
    assert "**return**" in snippet and "**returns**" in snippet and snippet.startswith("…")
    assert highlight("Ничего общего", "доставка").startswith("Ничего")


def test_fuse_rankings_reciprocal_rank() -> None:
    fused = fuse_rankings([("a", 0.9), ("b", 0.8)], [("b", 12.0), ("c", 5.0)], k=60)
    assert [h.chunk_id for h in fused] == ["b", "a", "c"]
    assert fused[0].vector_score == 0.8 and fused[0].bm25_score == 12.0
    assert fused[0].score == pytest.approx(1 / 62 + 1 / 61)


def test_confluence_storage_format_to_html() -> None:
    storage = (
        '<h2>Setup</h2><p>Run it.</p><ac:structured-macro ac:name="code"><ac:parameter ac:name="language">bash'
        "</ac:parameter><ac:plain-text-body><![CDATA[make run]]></ac:plain-text-body></ac:structured-macro>"
    )
    html = storage_to_html(storage)
    parsed = parse_document(FetchedDocument("c", "Page", html.encode(), "html", title="Page"))
    assert parsed.sections[0].heading_path == ["Setup"]
    assert "make run" in parsed.sections[0].text and "bash" not in parsed.sections[0].text
