"""The widget and the console in Chromium against the real fleet (gateway, chat, retrieval, integrations,
analytics as processes), the demo tenant and its demo knowledge base. Screenshots go to
``test-output/browser/<test name>/``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, expect

import switchboard_console
from switchboard_shared.testing.servers import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

Shots = Any
RealFleet = Any


def handoff_of(fleet: RealFleet, conversation_id: str) -> dict[str, Any]:
    with fleet.api() as api:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            items = api.get("/v1/handoffs").json()["items"]
            found = [h for h in items if h["conversation_id"] == conversation_id]
            if found:
                return found[0]
            time.sleep(0.3)
    raise AssertionError(f"no handoff for {conversation_id}")


def test_widget_on_a_customer_site_answers_from_the_knowledge_base(
    context: BrowserContext, real_fleet: RealFleet, customer_site: str, shots: Shots
) -> None:
    page = context.new_page()
    page.goto(f"{customer_site}/host")
    page.locator(".launcher").click()
    page.locator("textarea").fill("I forgot my password, how do I reset it?")
    page.locator("textarea").press("Enter")
    reply = page.locator(".msg.assistant:not(.greeting)").last
    expect(reply.locator(".feedback")).to_be_visible(timeout=60_000)
    answer = reply.locator(".text").inner_text()
    assert "**" not in answer, "Markdown emphasis is rendered, not shown as asterisks"
    assert "password" in answer.lower() or "reset" in answer.lower(), answer
    sources = reply.locator(".sources li")
    expect(sources.first).to_be_visible()
    assert "account" in sources.first.inner_text().lower(), sources.first.inner_text()
    shots.take(page, "fleet-answer-with-sources")

    reply.locator(".thumb-up").click()
    expect(reply.locator(".feedback-thanks")).to_have_text("Thanks for the feedback!")
    expect(page.locator(".error")).to_be_hidden()
    shots.take(page, "fleet-thumbs-up")


def test_widget_handoff_operator_reply_reload_and_bot_back(
    context: BrowserContext, real_fleet: RealFleet, customer_site: str, shots: Shots
) -> None:
    page = context.new_page()
    page.goto(f"{customer_site}/host?poll-ms=500")
    page.locator(".launcher").click()
    page.locator("textarea").fill("Where is my parcel?")
    page.locator("textarea").press("Enter")
    expect(page.locator(".msg.assistant:not(.greeting)").last.locator(".feedback")).to_be_visible(
        timeout=60_000
    )

    page.locator(".talk-to-person").click()
    expect(page.locator(".status")).to_have_text(re.compile("connecting you to a person", re.I))
    shots.take(page, "fleet-waiting-for-person")
    conversation_id = page.evaluate(
        "() => Object.entries(localStorage).filter(([k]) => k.startsWith('switchboard.widget.'))"
        ".map(([, v]) => JSON.parse(v).conversationId)[0]"
    )
    handoff = handoff_of(real_fleet, conversation_id)
    with real_fleet.api() as api:
        claimed = api.post(f"/v1/handoffs/{handoff['id']}/claim", json={"operator_id": "anna"})
        assert claimed.status_code == 200, claimed.text
        reply = api.post(
            f"/v1/handoffs/{handoff['id']}/reply",
            json={
                "text": "Hi, Anna here. Your parcel left the warehouse today.",
                "operator_id": "anna",
                "idempotency_key": f"reply-{handoff['id']}",
            },
        )
        assert reply.status_code == 200, reply.text
    expect(page.locator(".msg.operator")).to_contain_text(
        "Your parcel left the warehouse today.", timeout=15_000
    )
    expect(page.locator(".status")).to_have_text("A person has joined the conversation.")
    shots.take(page, "fleet-operator-replied")

    page.reload()
    expect(page.locator(".panel")).to_be_visible()
    expect(page.locator(".msg.operator")).to_contain_text("Your parcel left the warehouse today.")
    expect(page.locator(".msg.user").first).to_contain_text("Where is my parcel?")
    shots.take(page, "fleet-after-reload")

    with real_fleet.api() as api:
        returned = api.post(f"/v1/handoffs/{handoff['id']}/return", json={"operator_id": "anna"})
        assert returned.status_code == 200, returned.text
    expect(page.locator(".notice", has_text="You're back with the assistant.")).to_be_visible(timeout=15_000)
    shots.take(page, "fleet-bot-back")


@pytest.fixture
def console_server(real_fleet: RealFleet, tmp_path: Path) -> Iterator[str]:
    """The operator console as ``switchboard up`` runs it: ``streamlit run switchboard_console/app.py``."""
    port = free_port()
    app = Path(switchboard_console.__file__).with_name("app.py")
    env = {
        **os.environ,
        "CONSOLE_GATEWAY_URL": real_fleet.gateway_url,
        "CONSOLE_ADMIN_KEY": real_fleet.keys["admin_key"],
        "HOME": str(tmp_path),
    }
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
    ]
    log = (tmp_path / "console.log").open("wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise AssertionError((tmp_path / "console.log").read_text()[-2000:])
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_console_smoke_in_chromium(context: BrowserContext, console_server: str, shots: Shots) -> None:
    page = context.new_page()
    page.goto(console_server)
    expect(page.get_by_role("heading", name="Playground")).to_be_visible(timeout=30_000)
    expect(page.get_by_text("Tenant: demo")).to_be_visible(timeout=30_000)
    shots.take(page, "console-playground")

    page.get_by_placeholder("Ask as a customer…").fill("How long does delivery take?")
    page.get_by_placeholder("Ask as a customer…").press("Enter")
    expect(page.get_by_text("Retrieved passages")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("extractive").first).to_be_visible()
    shots.take(page, "console-playground-answer")

    page.get_by_role("link", name="Settings").click()
    expect(page.get_by_role("heading", name="Settings")).to_be_visible(timeout=30_000)
    expect(page.get_by_role("button", name="Create key")).to_be_visible()
    expect(page.get_by_label("Name")).to_be_visible()
    expect(page.get_by_text("Allowed origins (widget keys; comma separated)")).to_be_visible()
    page.wait_for_load_state("networkidle")
    shots.take(page, "console-settings")


def test_demo_page_served_by_the_gateway(
    context: BrowserContext, real_fleet: RealFleet, shots: Shots
) -> None:
    """The page ``make run`` opens: the gateway's own ``/`` with the demo widget key."""
    page = context.new_page()
    page.goto(f"{real_fleet.gateway_url}/?key={real_fleet.keys['widget_key']}&lang=en")
    page.locator(".launcher").click()
    page.locator("textarea").fill("How long does delivery take?")
    page.locator("textarea").press("Enter")
    expect(page.locator(".msg.assistant:not(.greeting) .feedback")).to_be_visible(timeout=60_000)
    shots.take(page, "demo-page-answer")
    page.reload()  # the widget re-reads the conversation with a same-origin GET (browsers send no Origin)
    expect(page.locator(".msg.assistant:not(.greeting) .feedback")).to_be_visible()
    page.wait_for_timeout(1000)
    expect(page.locator(".error")).to_be_hidden()
    shots.take(page, "demo-page-after-reload")


def test_demo_page_signs_in_the_demo_customer_and_looks_up_their_order(
    context: BrowserContext, real_fleet: RealFleet, shots: Shots
) -> None:
    """The demo page's sign-in: the gateway signs C-1001's identity token; the widget then answers an order
    question from the demo CRM, which it refuses to do for an anonymous visitor."""
    page = context.new_page()
    page.goto(f"{real_fleet.gateway_url}/?key={real_fleet.keys['widget_key']}&lang=en")
    expect(page.locator("#who")).to_contain_text("anonymous visitor")
    shots.take(page, "demo-sign-in-anonymous")
    page.get_by_role("button", name="Sign in as demo customer").click()
    expect(page.locator("#who")).to_have_text("Signed in as the demo customer C-1001.", timeout=15_000)
    assert "user_token=v1." in page.url
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    page.locator(".launcher").click()
    # The demo tenant's own greeting (its assistant settings), not the widget's generic one.
    expect(page.locator(".msg.greeting")).to_contain_text("Demo shop assistant")
    page.locator("textarea").fill("Where is my order A-1001?")
    page.locator("textarea").press("Enter")
    reply = page.locator(".msg.assistant:not(.greeting)").last
    expect(reply.locator(".feedback")).to_be_visible(timeout=60_000)
    answer = reply.locator(".text").inner_text()
    assert "A-1001" in answer and "shipped" in answer.lower(), answer
    assert "RU123456789" in answer, answer
    # The greeting is not repeated by the server's copy of it.
    expect(page.locator(".msg.assistant")).to_have_count(2)
    shots.take(page, "demo-sign-in-order-status")

    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("#who")).to_contain_text("anonymous visitor", timeout=15_000)
    assert "user_token" not in page.url
    shots.take(page, "demo-signed-out")


def test_an_operator_approves_a_suggestion_in_the_console_and_the_next_customer_gets_it(
    browser: Any,
    context: BrowserContext,
    real_fleet: RealFleet,
    customer_site: str,
    console_server: str,
    shots: Shots,
) -> None:
    """The learning loop as people see it: the bot cannot answer, a human does and resolves; the console
    shows the suggestion, the operator edits and approves it; the next customer, asking in other words and
    in Russian, gets that answer."""
    question = "Can I pay for my order with cryptocurrency?"
    approved = "We do not accept cryptocurrency yet: pay by bank card or SBP."
    page = context.new_page()
    page.goto(f"{customer_site}/host?poll-ms=500")
    page.locator(".launcher").click()
    page.locator("textarea").fill(question)
    page.locator("textarea").press("Enter")
    unhelpful = page.locator(".msg.assistant:not(.greeting)").last
    expect(unhelpful.locator(".feedback")).to_be_visible(timeout=60_000)
    # Whether the bot refuses or answers something else, the customer says it did not help.
    unhelpful.locator(".thumb-down").click()
    expect(unhelpful.locator(".feedback-thanks")).to_be_visible()
    page.locator(".talk-to-person").click()
    expect(page.locator(".status")).to_have_text(re.compile("connecting you to a person", re.I))
    conversation_id = page.evaluate(
        "() => Object.entries(localStorage).filter(([k]) => k.startsWith('switchboard.widget.'))"
        ".map(([, v]) => JSON.parse(v).conversationId)[0]"
    )
    handoff = handoff_of(real_fleet, conversation_id)
    with real_fleet.api() as api:
        assert (
            api.post(f"/v1/handoffs/{handoff['id']}/claim", json={"operator_id": "anna"}).status_code == 200
        )
        reply = api.post(
            f"/v1/handoffs/{handoff['id']}/reply",
            json={
                "text": "Not yet, sorry: cards and SBP.",
                "operator_id": "anna",
                "idempotency_key": "crypto-1",
            },
        )
        assert reply.status_code == 200, reply.text
        resolved = api.post(f"/v1/handoffs/{handoff['id']}/resolve", json={"operator_id": "anna"})
        assert resolved.status_code == 200, resolved.text
        deadline = time.monotonic() + 20
        while api.get("/v1/curated/suggestions").json()["total"] == 0 and time.monotonic() < deadline:
            time.sleep(0.3)

    console = context.new_page()
    console.goto(f"{console_server}/curated")
    expect(console.get_by_role("heading", name="Curated answers")).to_be_visible(timeout=30_000)
    console.get_by_role("tab", name="Suggestions (1)").click()
    expect(console.get_by_text(question).first).to_be_visible()
    answer = console.get_by_label("Answer (the operator's reply; edit before approving)")
    expect(answer).to_have_value("Not yet, sorry: cards and SBP.")
    answer.fill(approved)
    wordings = console.get_by_label(
        "Customers' wordings (one per line; add the question in the other language too)"
    )
    wordings.fill(f"{question}\nМожно ли оплатить заказ криптовалютой?")
    shots.take(console, "console-suggestion-edited")
    console.get_by_role("button", name="Approve as curated answer").click()
    expect(console.get_by_text("Approved: customers asking this now get the curated answer.")).to_be_visible(
        timeout=30_000
    )
    expect(console.get_by_role("tab", name="Suggestions (0)")).to_be_visible()
    shots.take(console, "console-suggestion-approved")

    later = browser.new_context()
    try:
        customer = later.new_page()
        customer.goto(f"{customer_site}/host")
        customer.locator(".launcher").click()
        customer.locator("textarea").fill("Можно ли расплатиться криптовалютой за заказ?")
        customer.locator("textarea").press("Enter")
        reply_text = customer.locator(".msg.assistant:not(.greeting)").last
        expect(reply_text.locator(".feedback")).to_be_visible(timeout=60_000)
        assert reply_text.locator(".text").inner_text().strip() == approved
        shots.take(customer, "widget-curated-answer-in-russian")
    finally:
        later.close()

    # The thumbs-down is a content gap of the demo knowledge base on the Analytics page.
    console.goto(f"{console_server}/analytics")
    expect(console.get_by_role("heading", name="Content gaps")).to_be_visible(timeout=60_000)
    gap = console.get_by_text(re.compile(r"\d+ refused, [1-9]\d* rated down")).first
    expect(gap).to_be_visible(timeout=30_000)
    gap.click()
    expect(console.get_by_test_id("stDataFrame").last).to_be_visible()
    console.wait_for_timeout(1500)  # the grid draws itself after it appears
    shots.take(console, "console-content-gaps")


def test_an_operator_runs_an_uploaded_question_set_in_the_console_twice(
    context: BrowserContext, console_server: str, shots: Shots, tmp_path: Path
) -> None:
    questions = tmp_path / "my-questions.jsonl"
    questions.write_text(
        "\n".join(
            json.dumps(q, ensure_ascii=False)
            for q in (
                {
                    "id": "d1",
                    "question": "How much does courier delivery cost?",
                    "expected_sources": ["delivery.md"],
                },
                {"id": "d2", "question": "Сколько хранится посылка в пункте выдачи?", "key_phrases": ["7"]},
                {"id": "d3", "question": "Do you have physical stores in Moscow?", "kind": "unanswerable"},
            )
        )
    )
    console = context.new_page()
    console.goto(f"{console_server}/evaluation")
    expect(console.get_by_role("heading", name="Evaluation")).to_be_visible(timeout=30_000)
    console.locator("input[type=file]").set_input_files(str(questions))
    expect(console.get_by_text("my-questions.jsonl")).to_be_visible()
    for name in ("before", "after"):
        console.get_by_label("Name of this run").fill(name)
        console.get_by_label("Name of this run").press("Enter")
        console.get_by_role("button", name="Run the evaluation").click()
        expect(console.get_by_role("heading", name=f"Questions of {name}")).to_be_visible(timeout=120_000)
    expect(console.get_by_text(re.compile(r"after against before"))).to_be_visible()
    shots.take(console, "console-evaluation-two-runs")
