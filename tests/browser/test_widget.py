"""The embeddable widget in a real Chromium, against the stand-in gateway (public API wire format, SSE).

Each test saves numbered screenshots of its steps under ``test-output/browser/<test name>/``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

# Fixtures and the stand-in gateway live in conftest.py; tests reach its constants through the fixture.
Shots = Any
StandinGateway = Any

pytestmark = pytest.mark.e2e

QUESTION = "How do I reset my password?"


def open_widget(page: Page) -> None:
    page.locator(".launcher").click()
    expect(page.locator(".panel")).to_be_visible()


def ask(page: Page, text: str) -> None:
    page.locator("textarea").fill(text)
    page.locator("textarea").press("Enter")


def answer_bubble(page: Page) -> object:
    return page.locator(".msg.assistant:not(.greeting)").last


def test_question_streams_answer_with_citation_link(
    context: BrowserContext, standin: tuple[StandinGateway, str], shots: Shots
) -> None:
    gateway, base = standin
    gateway.token_delay = 0.12
    page = context.new_page()
    page.goto(f"{base}/host")
    launcher = page.locator(".launcher")
    expect(launcher).to_have_attribute("aria-expanded", "false")
    shots.take(page, "closed-launcher")

    open_widget(page)
    expect(launcher).to_have_attribute("aria-expanded", "true")
    expect(page.locator("textarea")).to_be_focused()
    shots.take(page, "open-with-greeting")

    ask(page, QUESTION)
    streaming = page.locator(".msg.assistant[aria-busy=true] .text")
    expect(streaming).to_contain_text("reset your")
    partial = streaming.inner_text()
    assert 0 < len(partial) < len(gateway.answer), "the answer should be visible while it is still streaming"
    shots.take(page, "answer-streaming")

    reply = page.locator(".msg.assistant:not(.greeting)").last
    expect(reply.locator(".feedback")).to_be_visible()
    expect(reply.locator(".text")).to_have_text(gateway.answer_shown)
    expect(reply.locator(".text strong")).to_have_text("Forgot password")
    expect(reply.locator(".text a.cite")).to_have_attribute("href", str(gateway.citation.url))
    link = reply.locator(".sources a")
    expect(link).to_have_attribute("href", str(gateway.citation.url))
    expect(link).to_have_text(f"[1] {gateway.citation.title}")
    expect(link).to_have_attribute("target", "_blank")
    shots.take(page, "answer-with-citation")

    (post,) = gateway.recorded("POST", "/messages")
    assert post.body["text"] == QUESTION
    assert post.headers["authorization"] == f"Bearer {gateway.key}"
    assert post.headers["accept"] == "text/event-stream"
    assert post.headers["x-anonymous-id"].startswith("anon_")
    assert post.headers["origin"] == base
    (created,) = gateway.recorded("POST", "/v1/conversations")
    assert created.body["channel"] == "web"
    assert created.body["end_user_id"] == "anon:" + post.headers["x-anonymous-id"]


def test_an_answer_restarted_mid_stream_drops_the_abandoned_text(
    context: BrowserContext, standin: tuple[StandinGateway, str]
) -> None:
    """A provider that stalls mid-answer is replaced (a `reset` packet): the widget drops what it showed."""
    gateway, base = standin
    gateway.token_delay = 0.12
    gateway.abandoned = "The first model began to say something half-way"
    page = context.new_page()
    page.goto(f"{base}/host")
    open_widget(page)
    ask(page, QUESTION)
    streaming = page.locator(".msg.assistant[aria-busy=true] .text")
    expect(streaming).to_contain_text("half-way")
    expect(streaming).to_contain_text("reset your")  # the new answer streams in the same bubble...
    expect(streaming).not_to_contain_text("half-way")  # ...without the abandoned words
    reply = page.locator(".msg.assistant:not(.greeting)").last
    expect(reply.locator(".feedback")).to_be_visible()
    expect(reply.locator(".text")).to_have_text(gateway.answer_shown)
    expect(page.locator(".msg.assistant:not(.greeting)")).to_have_count(1)


def test_thumbs_send_feedback_for_that_answer(
    context: BrowserContext, standin: tuple[StandinGateway, str], shots: Shots
) -> None:
    gateway, base = standin
    page = context.new_page()
    page.goto(f"{base}/host")
    open_widget(page)
    ask(page, QUESTION)
    reply = page.locator(".msg.assistant:not(.greeting)").last
    up, down = reply.locator(".thumb-up"), reply.locator(".thumb-down")
    expect(up).to_have_attribute("aria-pressed", "false")

    up.click()
    expect(up).to_have_attribute("aria-pressed", "true")
    expect(reply.locator(".feedback-thanks")).to_have_text("Thanks for the feedback!")
    shots.take(page, "thumbs-up")

    down.click()
    expect(down).to_have_attribute("aria-pressed", "true")
    expect(up).to_have_attribute("aria-pressed", "false")
    shots.take(page, "thumbs-down")

    conversation = next(iter(gateway.conversations.values()))
    reply_id = conversation.messages[-1].id
    feedback = [r.body for r in gateway.recorded("POST", "/feedback")]
    assert feedback == [
        {"message_id": reply_id, "rating": "up"},
        {"message_id": reply_id, "rating": "down"},
    ]


def test_handoff_operator_reply_and_bot_back(
    context: BrowserContext, standin: tuple[StandinGateway, str], shots: Shots
) -> None:
    gateway, base = standin
    page = context.new_page()
    page.goto(f"{base}/host?poll-ms=250")
    open_widget(page)
    ask(page, QUESTION)
    expect(page.locator(".msg.assistant .feedback")).to_be_visible()

    page.locator(".talk-to-person").click()
    status = page.locator(".status")
    expect(status).to_have_text(re.compile("connecting you to a person", re.I))
    expect(page.locator(".talk-to-person")).to_be_hidden()
    assert len(gateway.recorded("POST", "/handoff")) == 1
    shots.take(page, "waiting-for-person")

    conversation_id = next(iter(gateway.conversations))
    gateway.operator_reply(conversation_id, "Hi, this is Anna from support. I have reset it for you.")
    operator = page.locator(".msg.operator")
    expect(operator).to_contain_text("I have reset it for you")
    expect(operator.locator(".who")).to_have_text("Support agent")
    expect(status).to_have_text("A person has joined the conversation.")
    expect(page.locator(".notice", has_text="A person has joined")).to_be_visible()
    shots.take(page, "operator-replied")

    ask(page, "Thank you, Anna!")
    expect(page.locator(".msg.user", has_text="Thank you, Anna!")).to_be_visible()
    page.wait_for_timeout(600)
    assert page.locator(".msg.assistant:not(.greeting)").count() == 1, (
        "the bot stays silent while a human owns"
    )
    expect(page.locator(".typing")).to_be_hidden()

    gateway.resolve(conversation_id)
    expect(page.locator(".notice", has_text="This conversation was marked as resolved.")).to_be_visible()

    gateway.return_to_bot(conversation_id)
    expect(page.locator(".notice", has_text="You're back with the assistant.")).to_be_visible()
    expect(status).to_be_hidden()
    expect(page.locator(".talk-to-person")).to_be_visible()
    shots.take(page, "bot-back")


def test_reload_keeps_the_conversation_and_new_conversation_clears_it(
    context: BrowserContext, standin: tuple[StandinGateway, str], shots: Shots
) -> None:
    gateway, base = standin
    page = context.new_page()
    page.goto(f"{base}/host")
    open_widget(page)
    ask(page, QUESTION)
    expect(page.locator(".msg.assistant .feedback")).to_be_visible()
    page.locator(".thumb-up").click()
    expect(page.locator(".thumb-up")).to_have_attribute("aria-pressed", "true")

    page.reload()
    expect(page.locator(".panel")).to_be_visible()  # it was open, so it opens again
    expect(page.locator(".msg.user")).to_have_text(re.compile(re.escape(QUESTION)))
    expect(page.locator(".msg.assistant:not(.greeting) .text")).to_have_text(gateway.answer_shown)
    expect(page.locator(".sources a")).to_have_attribute("href", str(gateway.citation.url))
    expect(page.locator(".thumb-up")).to_have_attribute("aria-pressed", "true")
    assert len(gateway.conversations) == 1
    shots.take(page, "after-reload")

    ask(page, "And my username?")
    expect(page.locator(".msg.assistant:not(.greeting) .feedback")).to_have_count(2)
    assert len(gateway.conversations) == 1, "the reloaded page continues the same conversation"

    page.locator(".new-conversation").click()
    expect(page.locator(".msg.user")).to_have_count(0)
    expect(page.locator(".notice", has_text="Started a new conversation.")).to_be_visible()
    shots.take(page, "new-conversation")
    ask(page, QUESTION)
    expect(page.locator(".msg.assistant:not(.greeting) .feedback")).to_have_count(1)
    assert len(gateway.conversations) == 2


def test_disallowed_origin_shows_a_clear_error(
    context: BrowserContext, standin: tuple[StandinGateway, str], other_site: str, shots: Shots
) -> None:
    gateway, _ = standin
    page = context.new_page()
    page.goto(f"{other_site}/host")
    open_widget(page)
    ask(page, QUESTION)
    alert = page.locator(".error[role=alert]")
    expect(alert).to_have_text("This chat isn't enabled for this website, so it can't be used here.")
    expect(page.locator("textarea")).to_have_value(QUESTION)  # nothing the customer typed is lost
    expect(page.locator(".msg.user")).to_have_count(0)
    shots.take(page, "origin-refused")
    assert gateway.requests[0].headers["origin"] == other_site
    assert gateway.conversations == {}


def test_phone_viewport(browser: object, standin: tuple[StandinGateway, str], shots: Shots) -> None:
    _, base = standin
    phone = browser.new_context(  # type: ignore[attr-defined]
        viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True, device_scale_factor=2
    )
    try:
        page = phone.new_page()
        page.goto(f"{base}/host?lang=ru")
        shots.take(page, "phone-closed")
        page.locator(".launcher").tap()
        panel = page.locator(".panel")
        expect(panel).to_be_visible()
        box = panel.bounding_box()
        assert box is not None and box["x"] == 0 and box["width"] == 360 and box["height"] == 740
        expect(page.locator("header h2")).to_have_text("Поддержка")
        ask(page, "Как сбросить пароль?")
        expect(page.locator(".msg.assistant:not(.greeting) .feedback")).to_be_visible()
        send = page.locator(".send").bounding_box()
        assert send is not None and send["x"] + send["width"] <= 360, "the send button fits on screen"
        no_overflow = page.evaluate(
            "() => { const r = document.querySelector('[data-switchboard-widget]').shadowRoot;"
            " const log = r.querySelector('.log'); return log.scrollWidth <= log.clientWidth; }"
        )
        assert no_overflow, "nothing in the conversation scrolls sideways"
        shots.take(page, "phone-answer")
        page.locator(".close").tap()
        expect(panel).to_be_hidden()
        expect(page.locator(".launcher")).to_be_visible()
    finally:
        phone.close()


def test_error_states_in_plain_words(
    context: BrowserContext, standin: tuple[StandinGateway, str], shots: Shots
) -> None:
    gateway, base = standin
    page = context.new_page()
    page.goto(f"{base}/host")
    open_widget(page)
    alert = page.locator(".error[role=alert]")

    gateway.fail_next.append((429, "rate_limited", {"Retry-After": "2"}))
    ask(page, QUESTION)
    expect(alert).to_have_text("You're sending messages too quickly. Please wait 2 seconds and try again.")
    expect(page.locator(".send")).to_be_disabled()
    shots.take(page, "rate-limited")
    expect(page.locator(".send")).to_be_enabled(timeout=5000)

    gateway.fail_next.append((503, "upstream_unavailable", {"Retry-After": "5"}))
    page.locator(".send").click()
    expect(alert).to_have_text(
        "The support service is unavailable right now. Please try again in a few minutes."
    )
    shots.take(page, "unavailable")

    context.set_offline(True)
    page.locator(".send").click()
    expect(alert).to_have_text("You're offline. Check your internet connection and try again.")
    shots.take(page, "offline")

    context.set_offline(False)
    page.locator(".send").click()
    expect(page.locator(".msg.assistant:not(.greeting) .feedback")).to_be_visible()
    expect(alert).to_be_hidden()
    expect(page.locator(".msg.user")).to_have_count(1)  # the failed attempts left no ghost messages


def test_keyboard_only_russian_reduced_motion_and_theme(
    context: BrowserContext, standin: tuple[StandinGateway, str], shots: Shots
) -> None:
    _, base = standin
    page = context.new_page()
    page.emulate_media(reduced_motion="reduce")
    page.goto(f"{base}/host?lang=ru&color=%23c2185b&position=left&greeting=Привет!")
    page.keyboard.press("Tab")
    launcher = page.locator(".launcher")
    expect(launcher).to_be_focused()
    expect(launcher).to_have_attribute("aria-label", "Открыть чат поддержки")
    page.keyboard.press("Enter")
    expect(page.locator("[role=dialog]")).to_be_visible()
    expect(page.locator("textarea")).to_be_focused()
    expect(page.locator(".greeting")).to_contain_text("Привет!")
    page.keyboard.type("Как сбросить пароль?")
    page.keyboard.press("Enter")
    expect(page.locator(".msg.assistant:not(.greeting) .feedback")).to_be_visible()
    expect(page.locator("[role=log]")).to_have_attribute("aria-live", "polite")
    expect(page.locator(".talk-to-person")).to_have_text("Позвать человека")
    shots.take(page, "russian-themed-left")

    style = page.evaluate(
        "() => { const b = document.querySelector('[data-switchboard-widget]').shadowRoot"
        ".querySelector('.launcher'); const s = getComputedStyle(b);"
        " return {bg: s.backgroundColor, transition: s.transitionDuration, left: s.left}; }"
    )
    assert style["bg"] == "rgb(194, 24, 91)"
    assert style["transition"] == "0s"
    assert style["left"] == "20px"

    page.keyboard.press("Escape")
    expect(page.locator("[role=dialog]")).to_be_hidden()
    expect(launcher).to_be_focused()


def test_demo_page_loads_the_widget_with_a_key(
    context: BrowserContext, standin: tuple[StandinGateway, str], shots: Shots
) -> None:
    gateway, base = standin
    page = context.new_page()
    # The demo page as the gateway serves it at "/", here opened through the allowed site's address.
    page.goto(f"{base}/")
    expect(page.locator("#state")).to_contain_text("No widget key yet")
    expect(page.locator(".launcher")).to_have_count(0)
    page.goto(f"{base}/?key={gateway.key}&lang=en")
    expect(page.locator("#snippet")).to_contain_text(f'data-key="{gateway.key}"')
    open_widget(page)
    ask(page, QUESTION)
    expect(page.locator(".sources a")).to_have_attribute("href", str(gateway.citation.url))
    shots.take(page, "demo-page")


def test_closed_widget_keeps_listening_and_shows_unread_replies(
    context: BrowserContext, standin: tuple[StandinGateway, str], shots: Shots
) -> None:
    """The banner says "don't close the page", not the panel: a person's reply that arrives while the panel
    is closed is fetched anyway and counted on the launcher; opening the panel shows it and clears the count,
    and the count survives a reload."""
    gateway, base = standin
    page = context.new_page()
    page.goto(f"{base}/host?poll-ms=250")
    open_widget(page)
    ask(page, QUESTION)
    expect(page.locator(".msg.assistant .feedback")).to_be_visible()
    page.locator(".talk-to-person").click()
    expect(page.locator(".status")).to_have_text(re.compile("connecting you to a person", re.I))
    page.locator(".close").click()
    expect(page.locator(".panel")).to_be_hidden()
    badge = page.locator(".badge")
    expect(badge).to_be_hidden()

    conversation_id = next(iter(gateway.conversations))
    gateway.operator_reply(conversation_id, "Hi, this is Anna. I'm looking at it.")
    expect(badge).to_have_text("1", timeout=10_000)
    gateway.operator_reply(conversation_id, "Done: your password is reset.")
    expect(badge).to_have_text("2", timeout=10_000)
    launcher = page.locator(".launcher")
    expect(launcher).to_have_attribute("aria-label", re.compile(r"\(2 new\)"))
    shots.take(page, "closed-with-unread-badge")

    page.reload()
    expect(page.locator(".badge")).to_have_text("2")
    page.locator(".launcher").click()
    expect(page.locator(".panel")).to_be_visible()
    expect(page.locator(".msg.operator")).to_have_count(2)
    expect(page.locator(".msg.operator").last).to_contain_text("password is reset")
    expect(page.locator(".badge")).to_be_hidden()
    shots.take(page, "opened-replies-read")
