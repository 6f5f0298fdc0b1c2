"""What customers judge the bot by, in Chromium against the real fleet and the demo knowledge base: the
widget answers a price question and a duration question with the right figures, in the customer's
language, and nothing about something else. Screenshots go to ``test-output/browser/<test name>/``."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

Shots = Any
RealFleet = Any


def open_widget(context: BrowserContext, customer_site: str) -> Page:
    """The customer's site with the chat widget opened."""
    page = context.new_page()
    page.goto(f"{customer_site}/host")
    page.locator(".launcher").click()
    return page


def ask(page: Page, question: str) -> str:
    page.locator("textarea").fill(question)
    page.locator("textarea").press("Enter")
    reply = page.locator(".msg.assistant:not(.greeting)").last
    expect(reply.locator(".feedback")).to_be_visible(timeout=60_000)
    return reply.locator(".text").inner_text()


def test_the_widget_answers_delivery_prices_and_the_warranty_period(
    context: BrowserContext, real_fleet: RealFleet, customer_site: str, shots: Shots
) -> None:
    page = open_widget(context, customer_site)

    delivery = ask(page, "Сколько стоит доставка?")
    shots.take(page, "delivery-prices-in-russian")
    # The delivery options with their prices, in Russian, and not the loyalty programme's price.
    for price in ("349 ₽", "149 ₽"):
        assert price.replace(" ", "") in delivery.replace(" ", "").replace("\u00a0", ""), delivery
    assert "199" not in delivery and "Подписка" not in delivery, delivery
    assert not re.search(r"не нашёл|could not find", delivery), delivery

    page.locator(".new-conversation").click()
    warranty = ask(page, "How long does the warranty last?")
    shots.take(page, "warranty-period-in-english")
    assert re.search(r"12[- ]month", warranty), warranty
    # A sentence that only mentions the warranty, without a period, does not join the answer.
    assert "can be returned" not in warranty, warranty
    assert "could not find" not in warranty, warranty


def test_a_message_that_asks_two_things_gets_an_answer_to_the_one_the_knowledge_base_covers(
    context: BrowserContext, real_fleet: RealFleet, customer_site: str, shots: Shots
) -> None:
    page = open_widget(context, customer_site)

    answer = ask(page, "Сколько стоит доставка курьером и можно ли платить биткоинами?")
    shots.take(page, "delivery-price-and-bitcoin")
    # The courier price (the payment passages no longer crowd the delivery section out of the search) ...
    assert "349₽" in answer.replace(" ", "").replace("\u00a0", ""), answer
    # ... and a doubt about the part the knowledge base does not answer, in Russian, naming it.
    assert "Не уверен" in answer and "биткоинами" in answer, answer
