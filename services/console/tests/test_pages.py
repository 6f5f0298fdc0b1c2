"""Each console page driven by Streamlit's AppTest against a running fleet, through the gateway only."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from switchboard_shared.testing.servers import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

Page = Callable[..., AppTest]


def button(app: AppTest, label: str) -> Any:
    return next(b for b in app.button if b.label == label)


def texts(elements: Any) -> list[str]:
    return [str(e.value) for e in elements]


def test_settings_keys_create_and_revoke_and_provider_chain(page: Page, fleet: Any) -> None:
    app = page("settings_page")
    shown = app.dataframe[0].value
    assert {"demo-widget", "demo-server", "demo-admin"} <= set(shown["name"])

    app.selectbox[1].set_value("widget")  # 0 is the revoke picker
    app.text_input[0].set_value("shop widget")
    app.text_input[1].set_value("https://shop.example.com")
    button(app, "Create key").click().run()
    assert not app.exception
    assert "Copy it now" in " ".join(texts(app.success))
    assert app.code[0].value.startswith("pk_")
    with fleet.api() as api:
        keys = api.get(f"/v1/admin/tenants/{fleet.keys['tenant']}/keys").json()
    created = next(k for k in keys if k["name"] == "shop widget")
    assert created["allowed_origins"] == ["https://shop.example.com"]

    app.selectbox[0].set_value(created["id"])
    button(app, "Revoke").click().run()
    assert not app.exception
    with fleet.api() as api:
        keys = api.get(f"/v1/admin/tenants/{fleet.keys['tenant']}/keys").json()
    assert "shop widget" not in {k["name"] for k in keys}

    app.multiselect[0].set_value(["extractive"])
    app.number_input[0].set_value(3)
    button(app, "Save").click().run()
    assert not app.exception
    assert "Saved." in texts(app.success)
    with fleet.api() as api:
        assistant = api.get("/v1/assistant").json()
    assert assistant["providers"] == ["extractive"]
    assert assistant["escalation"]["max_unsupported_answers"] == 3


def test_settings_widget_key_without_origin_is_refused_in_plain_words(page: Page) -> None:
    app = page("settings_page")
    app.selectbox[1].set_value("widget")
    button(app, "Create key").click().run()
    assert not app.exception
    assert any("allowed origin" in e for e in texts(app.error)), texts(app.error)


def test_knowledge_create_kb_add_source_sync_browse_and_search(page: Page, fleet: Any) -> None:
    docs = fleet.data_dir / "files" / "demo" / "docs"
    docs.mkdir(parents=True)
    (docs / "returns.md").write_text(
        "# Returns\n\nYou can return any item within 30 days of delivery. Refunds reach your card in 5 days.\n"
    )
    (docs / "shipping.md").write_text(
        "# Shipping\n\nStandard shipping takes 3 to 5 business days. Express shipping arrives next day.\n"
    )
    app = page("knowledge")
    app.sidebar.text_input[0].set_value("Console test KB")
    button(app, "Create knowledge base").click().run()
    assert not app.exception
    assert "Created Console test KB." in texts(app.success)

    assert app.selectbox[0].value == app.session_state["kb_selected"]
    app.selectbox(key="src-kind").set_value("files").run()
    path_input = next(t for t in app.text_input if t.label == "Path or fsspec URL")
    path_input.set_value(str(docs))
    button(app, "Add and sync").click().run()
    assert not app.exception
    synced = " ".join(texts(app.success))
    assert "Synced: 2 added" in synced, (synced, texts(app.error), texts(app.warning))

    app.run()
    frame = app.dataframe[0].value
    assert set(frame["title"]) == {"Returns", "Shipping"}
    assert any("Returns" in e.label or "Shipping" in e.label for e in app.expander)

    query = next(t for t in app.text_input if t.label == "Test a search")
    query.set_value("how long does a refund take")
    button(app, "Search").click().run()
    assert not app.exception
    assert any("**Returns**" in m for m in texts(app.markdown)), texts(app.markdown)


def test_knowledge_documents_resync_and_delete(page: Page, fleet: Any) -> None:
    # A files source reads only the tenant's own folder (data_dir/files/<tenant> by default).
    docs = fleet.data_dir / "files" / "demo" / "documents-page"
    docs.mkdir(parents=True)
    (docs / "pickup.md").write_text(
        "# Pickup\n\nOrders wait at the pickup point on Lenina 5 for seven days.\n"
    )
    (docs / "gifts.md").write_text("# Gift cards\n\nGift cards from 500 roubles are valid for three years.\n")
    with fleet.api() as api:
        kb = api.post("/v1/kbs", json={"name": "Console documents KB"}).json()
        created = api.post(
            f"/v1/kbs/{kb['id']}/sources",
            json={"type": "files", "config": {"path": str(docs), "public_base_url": "https://help.example/"}},
        ).json()
        deadline = time.monotonic() + 120
        while api.get(f"/v1/jobs/{created['job']['id']}").json()["status"] not in ("succeeded", "failed"):
            assert time.monotonic() < deadline
            time.sleep(0.3)
        ids = {d["title"]: d["id"] for d in api.get(f"/v1/kbs/{kb['id']}/documents").json()["items"]}
    app = page("knowledge", kb_selected=kb["id"])
    assert set(app.selectbox(key="kb-doc").options) == {"Pickup", "Gift cards"}
    app.selectbox(key="kb-doc").set_value(ids["Pickup"]).run()
    assert any("https://help.example/pickup.md" in c for c in texts(app.caption)), texts(app.caption)

    # An edit on disk, then a re-sync of just that document.
    (docs / "pickup.md").write_text(
        "# Pickup\n\nOrders wait at the pickup point on Lenina 5 for fourteen days.\n"
    )
    button(app, "Re-sync this document").click().run()
    assert not app.exception
    assert "1 updated" in " ".join(texts(app.success)), (texts(app.success), texts(app.error))

    # Delete asks first, then removes it from the list and from search.
    button(app, "Delete this document").click().run()
    assert any("stops being found and cited" in w for w in texts(app.warning)), texts(app.warning)
    button(app, "Yes, delete it").click().run()
    assert not app.exception
    assert "Deleted Pickup." in texts(app.success), (texts(app.success), texts(app.error))
    assert set(app.dataframe[0].value["title"]) == {"Gift cards"}
    with fleet.api() as api:
        hits = api.post(
            f"/v1/kbs/{kb['id']}/search", json={"query": "pickup point Lenina", "mode": "bm25"}
        ).json()
    assert all(h["title"] != "Pickup" for h in hits["hits"]), hits


def test_playground_streams_an_answer_with_provider_and_passages(page: Page) -> None:
    app = page("playground")
    app.sidebar.multiselect[0].set_value(["extractive"])
    app.chat_input[0].set_value("How do I return an item?").run()
    assert not app.exception
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Provider"] == "extractive"
    assert metrics["Owner"] == "bot"
    assert app.session_state["pg_log"][0]["answer"]
    assert "pg_conversation" in app.session_state


def test_playground_starts_with_the_tenants_provider_chain(page: Page, fleet: Any) -> None:
    with fleet.api() as api:
        saved = api.get("/v1/assistant").json()
        try:
            # A tenant without a chain of its own: the service default, not an empty "Choose options".
            assert api.put("/v1/assistant", json={**saved, "providers": None}).status_code == 200
            app = page("playground")
            assert not app.exception
            assert app.sidebar.multiselect[0].value == ["extractive"]
            # A chain of its own, in its order.
            chain = ["extractive", "openai"]
            assert api.put("/v1/assistant", json={**saved, "providers": chain}).status_code == 200
            app = page("playground")
            assert app.sidebar.multiselect[0].value == chain
        finally:
            api.put("/v1/assistant", json=saved)


def test_conversations_lists_and_opens_a_transcript(page: Page, fleet: Any) -> None:
    user = "conv-test-customer"
    with fleet.api("server_key", **{"X-End-User-ID": user}) as api:
        conversation = api.post("/v1/conversations", json={"channel": "api", "end_user_id": user}).json()
        turn = api.post(
            f"/v1/conversations/{conversation['id']}/messages", json={"text": "Where is my parcel?"}
        )
        assert turn.status_code == 200, turn.text
    app = page("conversations")
    app.text_input[0].set_value(user)
    button(app, "Search").click().run()
    assert not app.exception
    assert list(app.dataframe[0].value["customer"]) == [user]
    transcript = texts(app.markdown)
    assert any("Where is my parcel?" in t for t in transcript), transcript


def test_handoff_queue_claim_reply_and_return(page: Page, fleet: Any) -> None:
    user = "handoff-test-customer"
    with fleet.api("server_key", **{"X-End-User-ID": user}) as api:
        conversation = api.post("/v1/conversations", json={"channel": "api", "end_user_id": user}).json()
        api.post(f"/v1/conversations/{conversation['id']}/messages", json={"text": "My order never came"})
        handoff = api.post(f"/v1/conversations/{conversation['id']}/handoff")
        assert handoff.status_code == 200, handoff.text
    app = page("handoffs")
    mine = next(e for e in app.expander if e.label.startswith(user))
    assert "waiting" in mine.label
    mine.button[0].click().run()  # Claim
    assert not app.exception
    mine = next(e for e in app.expander if e.label.startswith(user))
    assert "claimed" in mine.label
    mine.text_area[0].set_value("Hello, I am looking into your order now.")
    next(b for b in mine.button if b.label == "Send reply").click().run()
    assert not app.exception
    mine = next(e for e in app.expander if e.label.startswith(user))
    assert any("In the chat" in t for t in texts(mine.markdown)), (texts(mine.markdown), texts(app.error))
    assert "answered after" in mine.label, "the customer's wait ends with the first answer"
    assert mine.text_area[0].value == "", "a reply that was stored clears the draft"
    with fleet.api("server_key", **{"X-End-User-ID": user}) as api:
        messages = api.get(f"/v1/conversations/{conversation['id']}").json()["messages"]
    assert messages[-1]["role"] == "operator"
    assert messages[-1]["text"] == "Hello, I am looking into your order now."

    mine = next(e for e in app.expander if e.label.startswith(user))
    next(b for b in mine.button if b.label == "Return to bot").click().run()
    assert not app.exception
    assert not any(e.label.startswith(user) for e in app.expander)
    with fleet.api("server_key", **{"X-End-User-ID": user}) as api:
        assert api.get(f"/v1/conversations/{conversation['id']}").json()["owner"] == "bot"


def test_analytics_reports_render_over_a_range(page: Page, fleet: Any) -> None:
    deadline = time.monotonic() + 20
    app = page("analytics")
    while time.monotonic() < deadline:
        metrics = {m.label: m.value for m in app.metric}
        if metrics.get("Conversations") not in (None, "0"):
            break
        time.sleep(1)  # analytics events are batched by the emitting services
        app.run()
    assert not app.exception
    assert {"Conversations", "Resolution", "Escalation", "Deflection", "CSAT", "Latency p95"} <= set(metrics)
    assert int(metrics["Conversations"]) >= 1
    assert any(s == "Volume" for s in texts(app.subheader))
    assert "Content gaps" in texts(app.subheader)


def test_unreachable_gateway_is_said_plainly(fleet: Any) -> None:
    app = AppTest.from_file(
        str(Path(__file__).parents[1] / "src/switchboard_console/pages/analytics.py"), default_timeout=30
    )
    app.session_state["gateway_url"] = "http://127.0.0.1:9"
    app.session_state["admin_key"] = "ak_nothing"
    app.run()
    assert not app.exception
    assert any("Cannot reach the gateway" in e for e in texts(app.error)), texts(app.error)


def test_wrong_admin_key_asks_to_sign_in_again(fleet: Any) -> None:
    app = AppTest.from_file(
        str(Path(__file__).parents[1] / "src/switchboard_console/pages/knowledge.py"), default_timeout=30
    )
    app.session_state["gateway_url"] = fleet.gateway_url
    app.session_state["admin_key"] = "ak_not_a_real_key"
    app.run()
    assert not app.exception
    assert any("did not accept the admin key" in e for e in texts(app.error)), texts(app.error)
    assert any(b.label == "Sign in again" for b in app.button)


class StandinTelegram:
    """api.telegram.org for a trial binding (its own api_base): getMe and sendMessage; ``stop`` takes it off
    the network (connection refused) and ``start`` brings it back on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.sent: list[dict[str, Any]] = []
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        sent = self.sent

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, result: dict[str, Any]) -> None:
                answer = json.dumps({"ok": True, "result": result}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def do_GET(self) -> None:
                assert self.path.endswith("/getMe"), self.path
                self._answer({"id": int(BOT_TOKEN.split(":")[0]), "is_bot": True, "first_name": "Shop"})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                sent.append(body)
                self._answer({"message_id": len(sent), "chat": {"id": 1}, "text": body["text"]})

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


BOT_TOKEN = "7000000042:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1"


def test_reply_to_a_telegram_customer_while_telegram_is_down(page: Page, fleet: Any) -> None:
    """The reply is stored once and shown as not delivered (with why) through the live refresh; Retry now
    sends the stored words once Telegram is back; a refused send keeps the draft and its error."""
    telegram = StandinTelegram()
    telegram.start()  # up while the bot is bound (the binding checks the token with getMe)
    bot_token, secret, chat_id = BOT_TOKEN, "console-test-secret", 55501
    with fleet.api() as api:
        binding = api.post(
            "/v1/connectors/channels",
            json={
                "channel": "telegram",
                "settings": {"api_base": f"http://127.0.0.1:{telegram.port}"},
                "secrets": {"bot_token": bot_token, "secret_token": secret},
            },
        )
        assert binding.status_code == 201, binding.text
        telegram.stop()  # then api.telegram.org becomes unreachable
        update = {
            "update_id": 9001,
            "message": {
                "message_id": 1,
                "from": {"id": chat_id, "is_bot": False, "first_name": "Ольга", "language_code": "ru"},
                "chat": {"id": chat_id, "type": "private"},
                "date": 1732480000,
                "text": "Позовите, пожалуйста, оператора",
            },
        }
        hook = api.post(
            "/v1/channels/telegram/7000000042",
            json=update,
            headers={"X-Telegram-Bot-Api-Secret-Token": secret, "Authorization": ""},
        )
        assert hook.status_code == 200, hook.text
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            items = api.get("/v1/handoffs").json()["items"]
            found = [h for h in items if h["end_user_id"] == f"telegram:{chat_id}"]
            if found:
                break
            time.sleep(0.3)
        assert found, "asking for a person opens a handoff"
    handoff = found[0]
    user = f"telegram:{chat_id}"
    try:
        app = page("handoffs")
        mine = next(e for e in app.expander if e.label.startswith(user))
        mine.text_area[0].set_value("Здравствуйте! Уже смотрю ваш заказ.")
        next(b for b in mine.button if b.label == "Send reply").click().run()
        assert not app.exception
        mine = next(e for e in app.expander if e.label.startswith(user))
        shown = " ".join(texts(mine.markdown) + texts(mine.caption))
        assert "Not delivered yet, retrying" in shown, shown
        assert "is unavailable" in shown, shown
        assert mine.text_area[0].value == "", "the reply is stored: nothing to retype"
        app.run()  # the live refresh keeps showing the state
        mine = next(e for e in app.expander if e.label.startswith(user))
        assert "Not delivered yet" in " ".join(texts(mine.markdown))

        telegram.start()
        # Retry now (until the channel's circuit breaker lets calls through again, up to its reset time).
        deadline = time.monotonic() + 60
        while not any("Delivered" in t for t in texts(mine.markdown)) and time.monotonic() < deadline:
            retry = [b for b in mine.button if b.label == "Retry now"]
            if retry:
                retry[0].click()
            app.run()
            time.sleep(1)
            assert not app.exception
            mine = next(e for e in app.expander if e.label.startswith(user))
        assert any("Delivered" in t for t in texts(mine.markdown)), texts(mine.markdown)
        operator_texts = [m["text"] for m in telegram.sent if m["text"].startswith("Здравствуйте! Уже")]
        assert operator_texts == ["Здравствуйте! Уже смотрю ваш заказ."], telegram.sent
        with fleet.api() as api:
            detail = api.get(f"/v1/handoffs/{handoff['id']}").json()
            messages = api.get(f"/v1/conversations/{handoff['conversation_id']}").json()["messages"]
        assert [r["status"] for r in detail["replies"]] == ["sent"]
        assert [m["text"] for m in messages if m["role"] == "operator"] == [
            "Здравствуйте! Уже смотрю ваш заказ."
        ]

        # Someone else took the conversation meanwhile: the send is refused; the draft and the reason stay.
        with fleet.api() as api:
            api.post(f"/v1/handoffs/{handoff['id']}/return", json={"operator_id": "console-operator"})
        with fleet.api() as api:
            again = api.post(
                "/v1/handoffs",
                json={
                    "conversation_id": handoff["conversation_id"],
                    "channel": "telegram",
                    "end_user_id": user,
                    "external_key": f"7000000042:{chat_id}",
                    "reason": "again",
                    "create_ticket": False,
                },
            ).json()
            taken = api.post(f"/v1/handoffs/{again['id']}/claim", json={"operator_id": "someone-else"})
            assert taken.status_code == 200, taken.text
        app.run()
        mine = next(e for e in app.expander if e.label.startswith(user))
        mine.text_area[0].set_value("Second answer")
        next(b for b in mine.button if b.label == "Send reply").click().run()
        app.run()  # the refresh does not wipe the error or the draft
        mine = next(e for e in app.expander if e.label.startswith(user))
        assert any("claimed by someone-else" in e for e in texts(mine.error)), texts(mine.error)
        assert mine.text_area[0].value == "Second answer"
    finally:
        telegram.stop()


def test_curated_answers_add_list_edit_and_threshold(page: Page, fleet: Any) -> None:
    app = page("curated")
    assert not app.exception
    app.text_input[0].set_value("How long is the warranty on a kettle?")
    app.text_area[0].set_value("What warranty do kettles have?\nКакая гарантия на чайник?")
    app.text_area[1].set_value("Every kettle has a two-year warranty.")
    app.text_input[2].set_value("warranty, kettles")
    button(app, "Add curated answer").click().run()
    assert not app.exception
    assert "Saved." in texts(app.success)
    shown = app.dataframe[0].value
    assert list(shown["question"]) == ["How long is the warranty on a kettle?"]
    assert list(shown["language"]) == ["en"] and list(shown["hits"]) == [0]

    # The same question again is refused in plain words.
    app.text_input[0].set_value("how long is the warranty on a kettle")
    app.text_area[1].set_value("Two years.")
    button(app, "Add curated answer").click().run()
    assert any("already curated" in e for e in texts(app.error)), texts(app.error)

    with fleet.api() as api:
        entry = api.get("/v1/curated").json()["items"][0]
    assert entry["variants"] == ["What warranty do kettles have?", "Какая гарантия на чайник?"]
    assert entry["tags"] == ["warranty", "kettles"]

    button(app, "Save threshold").click().run()  # the default: no threshold of its own
    assert not app.exception
    with fleet.api() as api:
        assert api.get("/v1/curated/settings").json()["threshold"] is None


def test_curated_suggestions_are_approved_merged_and_dismissed(page: Page, fleet: Any) -> None:
    """Operators' replies to questions the bot could not answer wait on the curated page, most asked first;
    an operator edits and approves one, merges a translation into it first, and dismisses another."""
    suggestions = [
        ("s1", "Can I pay with cryptocurrency?", "Not yet."),
        ("s2", "Is it possible to pay with crypto?", "No, cards and SBP only."),
        ("s3", "Можно ли оплатить криптовалютой?", "Нет, только карты и СБП."),
        ("s4", "Do you sell gift cards?", "Ask in the shop."),
    ]
    with fleet.api() as api:
        for conversation, question, answer in suggestions:
            created = api.post(
                "/v1/curated/suggestions",
                json={
                    "question": question,
                    "answer": answer,
                    "conversation_id": conversation,
                    "reason": "handoff",
                },
            )
            assert created.status_code == 201, created.text
        groups = {g["question"]: g for g in api.get("/v1/curated/suggestions").json()["items"]}
    crypto = groups["Can I pay with cryptocurrency?"]
    russian = groups["Можно ли оплатить криптовалютой?"]
    gifts = groups["Do you sell gift cards?"]
    assert crypto["customers"] == 2

    app = page("curated")
    assert not app.exception
    assert any("3 suggested answers wait" in w for w in texts(app.warning)), texts(app.warning)
    assert "Suggestions (3)" in [t.label for t in app.tabs]

    app.selectbox(key=f"suggestion-into-{russian['id']}").set_value(crypto["id"])
    app.button(key=f"suggestion-merge-{russian['id']}").click().run()
    assert not app.exception
    assert "Merged." in texts(app.success)
    assert "Suggestions (2)" in [t.label for t in app.tabs]

    app.text_input(key=f"suggestion-question-{crypto['id']}").set_value("Do you accept cryptocurrency?")
    app.text_area(key=f"suggestion-answer-{crypto['id']}").set_value("Not yet: pay by card or SBP.")
    next(
        b for b in app.button if b.label == "Approve as curated answer" and crypto["id"] in str(b.form_id)
    ).click().run()
    assert not app.exception, app.exception
    assert any("Approved" in s for s in texts(app.success)), texts(app.success)

    app.button(key=f"suggestion-dismiss-{gifts['id']}").click().run()
    assert not app.exception
    assert "Dismissed." in texts(app.success)
    assert "Suggestions (0)" in [t.label for t in app.tabs]

    with fleet.api() as api:
        assert api.get("/v1/curated/suggestions").json()["total"] == 0
        entry = next(
            e
            for e in api.get("/v1/curated").json()["items"]
            if e["question"] == "Do you accept cryptocurrency?"
        )
        match = api.post("/v1/curated/match", json={"query": "Можно ли расплатиться криптовалютой?"}).json()
    assert entry["answer"] == "Not yet: pay by card or SBP."
    assert set(entry["variants"]) == {
        "Can I pay with cryptocurrency?",
        "Is it possible to pay with crypto?",
        "Можно ли оплатить криптовалютой?",
    }
    assert match["match"]["answer_id"] == entry["id"]


EVALUATION_SET = "\n".join(
    json.dumps(q)
    for q in (
        {"id": "e1", "question": "How much does courier delivery cost?", "expected_sources": ["delivery.md"]},
        {"id": "e2", "question": "How long will a pickup point keep my parcel?", "key_phrases": ["7 days"]},
        {"id": "e3", "question": "Do you have physical stores in Moscow?", "kind": "unanswerable"},
    )
)


def test_an_evaluation_runs_a_pasted_question_set_and_compares_two_runs(page: Page) -> None:
    app = page("evaluation")
    assert any("No run yet" in i for i in texts(app.info))
    app.text_area[0].input("not json\n").run()
    next(b for b in app.button if b.label == "Run the evaluation").click().run()
    assert any("cannot be read: pasted set:1" in e for e in texts(app.error)), texts(app.error)

    app.text_area[0].input(EVALUATION_SET).run()
    app.text_input[0].input("before").run()
    next(b for b in app.button if b.label == "Run the evaluation").click().run()
    assert not app.exception, app.exception
    runs = app.dataframe[0].value
    assert list(runs["questions"]) == [3]
    assert runs["hit@5"][0] == 1.0 and runs["unanswerable refused"][0] == 1.0, runs
    questions = app.dataframe[1].value
    assert list(questions["id"]) == ["e1", "e2", "e3"] and list(questions["refused"]) == [False, False, True]

    app.text_input[0].input("after").run()
    next(b for b in app.button if b.label == "Run the evaluation").click().run()
    assert not app.exception, app.exception
    assert len(app.dataframe[0].value) == 2
    assert any("**after** against **before**" in m for m in texts(app.markdown)), texts(app.markdown)
