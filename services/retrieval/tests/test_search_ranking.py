"""Search as customers type: misspelt words still find their page, a passage repeated in several documents
is returned once, a message that asks two things finds passages for both, and BM25 counts in the fusion only
as far as it knows the query's words."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from switchboard_retrieval.index.bm25 import Bm25Index
from switchboard_retrieval.search.service import _coverage

# Citations link only to public addresses: the tests find pages by the path mapped onto this one.
PUBLIC = "https://help.example/"
PAGES = {
    "builds.md": "# Builds\n\n## Cancelling\n\nTo cancel a build that is already running, press Cancel build.\n",
    "domains.md": "# Domains\n\n## Custom domain\n\nPoint a CNAME record at readthedocs.io to use your domain.\n",
    "oplata.md": "# Оплата\n\n## Рассрочка\n\nОплатить заказ частями можно через «Сплит на 4».\n",
    "shared-a.md": "# Notices\n\n## Maintenance\n\nThe dashboard is read-only every Sunday from 02:00 to 03:00.\n",
    "shared-b.md": "# Status\n\n## Maintenance\n\nThe dashboard is read-only every Sunday from 02:00 to 03:00.\n",
}


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "pages"
    root.mkdir()
    for name, text in PAGES.items():
        (root / name).write_text(text)
    return root


async def indexed(service: Any, name: str, pages: Path) -> dict[str, Any]:
    """A new knowledge base with ``pages`` ingested."""
    kb: dict[str, Any] = await service.create_kb(name)
    _, job = await service.add_source(
        kb["id"], {"type": "files", "config": {"path": str(pages), "public_base_url": PUBLIC}}
    )
    assert job["status"] == "succeeded", job
    return kb


@pytest.mark.asyncio
async def test_misspelt_queries_find_their_page_and_repeated_passages_come_once(
    sqlite_service: Any, corpus: Path
) -> None:
    kb = await indexed(sqlite_service, "typos", corpus)

    hits = await sqlite_service.search(kb["id"], "how do i cancle a bulid", mode="bm25")
    assert hits and hits[0]["url"].endswith("builds.md")
    assert "**cancel**" in hits[0]["snippet"].lower()  # highlighted with the corrected words
    hits = await sqlite_service.search(kb["id"], "можно оплотить частями?", mode="bm25")
    assert hits and hits[0]["url"].endswith("oplata.md")
    # The response says how the query was searched, so the answerer reads it the same way.
    for query, corrected in (("how do i cancle a bulid", "how do i cancel a build"), ("how to cancel", None)):
        response = await sqlite_service.client.post(
            f"/internal/v1/kbs/{kb['id']}/search", json={"query": query}
        )
        assert response.json()["corrected_query"] == corrected

    hits = await sqlite_service.search(kb["id"], "is the dashboard read-only on sunday", top_k=5)
    texts = [" ".join(h["text"].split()) for h in hits]
    assert len(texts) == len(set(texts)) and sum("every Sunday" in t for t in texts) == 1
    assert len(hits) == 4  # every other passage of the knowledge base still fills the page


@pytest.mark.asyncio
async def test_search_says_how_common_the_query_words_are_in_the_knowledge_base(
    sqlite_service: Any, corpus: Path
) -> None:
    kb = await indexed(sqlite_service, "words", corpus)
    response = await sqlite_service.client.post(
        f"/internal/v1/kbs/{kb['id']}/search",
        json={"query": "How do I cancel a running build on Sunday? Можно оплатить частями?"},
    )
    words = response.json()["query_words"]
    assert words["chunks"] == len(PAGES) - 1 or words["chunks"] == len(PAGES)  # one passage a page
    counts = words["frequencies"]
    # By stem ("running" is "run", "частями" is "част"); stop words ("on", "можно") left out, a word no page
    # holds counted 0.
    assert counts["cancel"] == counts["running"] == counts["build"] == 1
    assert counts["оплатить"] == counts["частями"] == 1
    assert 1 <= counts["sunday"] <= 2  # the maintenance notice, once or twice as ingestion kept it
    assert counts["how"] == 0
    assert not {"on", "a", "i", "можно"} & counts.keys()


def test_a_stem_counts_the_chunks_that_hold_it() -> None:
    index = Bm25Index.build(
        1,
        [
            ("c1", "s", "Builds run on every push."),
            ("c2", "s", "Cancel a running build from its page; the build stops."),
            ("c3", "s", "Webhooks notify you of failed builds."),
        ],
    )
    assert index.frequencies(["build", "run", "webhook", "deploy"]) == (3, [3, 2, 1, 0])
    assert Bm25Index.build(1, []).frequencies(["build"]) == (0, [0])


def test_a_filtered_search_counts_only_the_sources_it_searched() -> None:
    index = Bm25Index.build(
        1,
        [
            ("c1", "public", "Builds run on every push."),
            ("c2", "internal", "Internal runbook: the build farm's root password rotates monthly."),
            ("c3", "public", "Webhooks notify you of failed builds."),
        ],
    )
    assert index.frequencies(["build", "password"], {"public"}) == (2, [2, 0])
    assert index.frequencies(["build", "password"], {"internal"}) == (1, [1, 1])


def test_bm25_weight_follows_the_share_of_query_words_the_index_knows() -> None:
    index = Bm25Index.build(1, [("c1", "s", "Set up a Discord webhook for failed builds")])
    assert _coverage([index], "discord webhook for failed builds") == 1.0
    assert _coverage([index], "Как настроить вебхук для Discord?") == pytest.approx(1 / 3)
    assert _coverage([index], "Как отменить сборку?") == 0.0
    assert _coverage([], "anything") == 0.0


# A shop whose payment page says a lot about paying on delivery: searched as one query, a message asking
# about courier prices and bitcoin finds payment passages only.
SHOP = {
    "delivery.md": "# Delivery\n\n## Delivery costs\n\nCourier delivery costs 349 ₽; a pickup point costs 149 ₽.\n",
    "payment.md": (
        "# Payment\n\n## Cash on delivery\n\nPay the courier in cash or by card when the courier delivers.\n\n"
        "## Cryptocurrency\n\nWe do not accept bitcoin or other cryptocurrencies as payment.\n\n"
        "## Paying for delivery\n\nThe courier delivery fee is paid together with the order.\n\n"
        "## Instalments\n\nPay for an order in four parts with Split; the courier takes the first part.\n"
    ),
}


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", ["hybrid", "bm25", "vector"])
async def test_a_message_that_asks_two_things_finds_passages_for_each(
    sqlite_service_with: Any, tmp_path: Path, mode: str
) -> None:
    root = tmp_path / "shop"
    root.mkdir()
    for name, text in SHOP.items():
        (root / name).write_text(text)
    question = "How much does courier delivery cost and can I pay with bitcoin?"
    found = {}
    for parts in (False, True):
        async with sqlite_service_with(search_question_parts=parts) as svc:
            kb = await indexed(svc, f"shop-{parts}", root)
            hits = await svc.search(kb["id"], question, mode=mode, top_k=3)
            found[parts] = [" ".join(h["text"].split()) for h in hits]
    assert not any("bitcoin" in text for text in found[False])  # the delivery passages crowd it out
    assert any("bitcoin" in text for text in found[True])
    assert any("349 ₽" in text for text in found[True])
