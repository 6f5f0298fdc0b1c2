"""Conversations over HTTP: create, read, list, owner/status transitions, feedback, CSAT, errors."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.mark.asyncio
async def test_a_follow_up_question_is_answered_from_the_passages_with_citations(
    chat: Any, fleet: Any, conversation_factory: Any
) -> None:
    async with chat.client() as client:
        conversation = await conversation_factory(client)
        cid = conversation["id"]
        assert conversation["owner"] == "bot" and conversation["status"] == "open"

        first = await client.post(
            f"/internal/v1/conversations/{cid}/messages", json={"text": "How do I add a custom domain?"}
        )
        assert first.status_code == 200, first.text
        turn = first.json()
        reply = turn["reply"]
        assert reply["provider"] == "extractive" and not reply["no_answer"]
        assert "CNAME" in reply["text"] or "Admin page" in reply["text"]
        assert reply["citations"][0]["title"] == "Custom domains"
        assert reply["citations"][0]["url"] == "https://docs.example.com/custom-domains"
        assert turn["sources"] == ["d0"]
        assert turn["latency"]["total_ms"] >= turn["latency"]["retrieval_ms"]

        second = await client.post(
            f"/internal/v1/conversations/{cid}/messages", json={"text": "And the SSL certificate for it?"}
        )
        follow = second.json()["reply"]
        assert "SSL certificates" in follow["text"] and "[1]" in follow["text"]
        # The follow-up was searched together with the terms of the question before it.
        queries = [body["query"] for body in fleet.calls("/internal/v1/search")]
        assert "domain" in queries[-1].lower()

        full = (await client.get(f"/internal/v1/conversations/{cid}")).json()
        assert [m["role"] for m in full["messages"]] == ["user", "assistant", "user", "assistant"]
        after = (
            await client.get(f"/internal/v1/conversations/{cid}", params={"after": full["messages"][1]["id"]})
        ).json()
        assert [m["text"] for m in after["messages"]] == [m["text"] for m in full["messages"][2:]]


@pytest.mark.asyncio
async def test_russian_question_gets_a_russian_answer(chat: Any, conversation_factory: Any) -> None:
    async with chat.client() as client:
        cid = (await conversation_factory(client))["id"]
        reply = (
            await client.post(
                f"/internal/v1/conversations/{cid}/messages", json={"text": "Сколько дней на возврат товара?"}
            )
        ).json()["reply"]
        assert "30 дней" in reply["text"] and reply["citations"][0]["title"] == "Возврат товара"

        unknown = (
            await client.post(
                f"/internal/v1/conversations/{cid}/messages", json={"text": "Какая погода на Марсе завтра?"}
            )
        ).json()["reply"]
        assert unknown["no_answer"] and "не нашёл" in unknown["text"] and unknown["citations"] == []


@pytest.mark.asyncio
async def test_validation_and_not_found_use_the_shared_error_shape(
    chat: Any, conversation_factory: Any
) -> None:
    async with chat.client() as client:
        cid = (await conversation_factory(client))["id"]
        empty = await client.post(f"/internal/v1/conversations/{cid}/messages", json={"text": ""})
        assert empty.status_code == 422 and empty.json()["error"]["code"] == "validation_error"
        too_long = await client.post(f"/internal/v1/conversations/{cid}/messages", json={"text": "x" * 4001})
        assert too_long.status_code == 422
        missing = await client.post("/internal/v1/conversations/nope/messages", json={"text": "hi"})
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
        assert (await client.get("/internal/v1/conversations/nope")).status_code == 404
        bad_provider = await client.post(
            f"/internal/v1/conversations/{cid}/messages", json={"text": "hi", "providers": ["gpt5"]}
        )
        assert bad_provider.status_code == 422
        bad_after = await client.get(f"/internal/v1/conversations/{cid}", params={"after": "zzz"})
        assert bad_after.status_code == 404
    async with chat.client(**{"X-Tenant-ID": "other"}) as other:
        assert (await other.get(f"/internal/v1/conversations/{cid}")).status_code == 404


@pytest.mark.asyncio
async def test_an_end_user_sees_only_their_own_conversations(chat: Any, conversation_factory: Any) -> None:
    async with chat.client() as client:
        mine = (await conversation_factory(client, end_user_id="alice"))["id"]
        theirs = (await conversation_factory(client, end_user_id="bob"))["id"]
    async with chat.client(**{"X-End-User-ID": "alice"}) as alice:
        assert (await alice.get(f"/internal/v1/conversations/{mine}")).status_code == 200
        assert (await alice.get(f"/internal/v1/conversations/{theirs}")).status_code == 404
        assert (
            await alice.post(f"/internal/v1/conversations/{theirs}/messages", json={"text": "hi"})
        ).status_code == 404
        listed = (await alice.get("/internal/v1/conversations")).json()
        assert [c["id"] for c in listed["items"]] == [mine]
        forged = await alice.post("/internal/v1/conversations", json={"end_user_id": "bob"})
        assert forged.status_code == 403
        owner = await alice.put(
            f"/internal/v1/conversations/{mine}/owner", json={"owner": "human", "actor": "alice"}
        )
        assert owner.status_code == 403


@pytest.mark.asyncio
async def test_list_filters_and_pagination(chat: Any, conversation_factory: Any) -> None:
    async with chat.client() as client:
        ids = [
            (await conversation_factory(client, end_user_id=f"u{i}", channel="web" if i % 2 else "api"))["id"]
            for i in range(5)
        ]
        page = (await client.get("/internal/v1/conversations", params={"limit": 2})).json()
        assert page["total"] == 5 and len(page["items"]) == 2 and page["limit"] == 2
        rest = (await client.get("/internal/v1/conversations", params={"limit": 10, "offset": 2})).json()
        assert len(rest["items"]) == 3
        assert {c["id"] for c in page["items"] + rest["items"]} == set(ids)
        web = (await client.get("/internal/v1/conversations", params={"channel": "web"})).json()
        assert web["total"] == 2
        assert (await client.get("/internal/v1/conversations", params={"limit": 0})).status_code == 422
        assert (await client.get("/internal/v1/conversations", params={"status": "weird"})).status_code == 422


@pytest.mark.asyncio
async def test_owner_and_status_transitions_are_recorded_and_resolved_conversations_reopen(
    chat: Any, fleet: Any, conversation_factory: Any
) -> None:
    async with chat.client() as client:
        cid = (await conversation_factory(client))["id"]
        taken = await client.put(
            f"/internal/v1/conversations/{cid}/owner",
            json={"owner": "human", "actor": "op-7", "reason": "claimed"},
        )
        assert taken.json()["owner"] == "human"
        relayed = (
            await client.post(f"/internal/v1/conversations/{cid}/messages", json={"text": "Are you there?"})
        ).json()
        assert relayed["reply"] is None and relayed["owner"] == "human"
        assert fleet.calls("/internal/v1/handoffs/relay")[-1]["text"] == "Are you there?"
        operator = await client.post(
            f"/internal/v1/conversations/{cid}/operator-messages",
            json={"text": "Yes, I am looking into it.", "operator_id": "op-7", "idempotency_key": "zd-1"},
        )
        assert operator.status_code == 201 and operator.json()["role"] == "operator"
        again = await client.post(
            f"/internal/v1/conversations/{cid}/operator-messages",
            json={"text": "Yes, I am looking into it.", "operator_id": "op-7", "idempotency_key": "zd-1"},
        )
        assert again.json()["id"] == operator.json()["id"]
        back = await client.put(
            f"/internal/v1/conversations/{cid}/owner",
            json={"owner": "bot", "actor": "op-7", "reason": "done"},
        )
        assert back.json()["owner"] == "bot"
        resolved = await client.put(
            f"/internal/v1/conversations/{cid}/status", json={"status": "resolved", "actor": "op-7"}
        )
        assert resolved.json()["status"] == "resolved"
        reopened = (
            await client.post(
                f"/internal/v1/conversations/{cid}/messages", json={"text": "How long can a build run?"}
            )
        ).json()
        assert reopened["reply"]["text"].startswith("Every build has a time limit of 15 minutes")
        conversation = (await client.get(f"/internal/v1/conversations/{cid}")).json()
        assert conversation["status"] == "open"
        assert [m["role"] for m in conversation["messages"]] == ["user", "operator", "user", "assistant"]
        transitions = (await client.get(f"/internal/v1/conversations/{cid}/transitions")).json()
        assert [(t["field"], t["to_value"], t["actor"]) for t in transitions] == [
            ("owner", "human", "op-7"),
            ("owner", "bot", "op-7"),
            ("status", "resolved", "op-7"),
            ("status", "open", "customer"),
        ]


@pytest.mark.asyncio
async def test_feedback_and_csat_are_stored_and_emitted_with_sources(
    chat: Any, fleet: Any, conversation_factory: Any
) -> None:
    async with chat.client() as client:
        cid = (await conversation_factory(client))["id"]
        turn = (
            await client.post(
                f"/internal/v1/conversations/{cid}/messages", json={"text": "What is the build memory limit?"}
            )
        ).json()
        answer_id = turn["reply"]["id"]
        ok = await client.post(
            f"/internal/v1/conversations/{cid}/feedback",
            json={"message_id": answer_id, "rating": "down", "comment": "too short"},
        )
        assert ok.status_code == 204
        bad = await client.post(
            f"/internal/v1/conversations/{cid}/feedback",
            json={"message_id": turn["user_message"]["id"], "rating": "up"},
        )
        assert bad.status_code == 404
        assert (
            await client.post(
                f"/internal/v1/conversations/{cid}/feedback", json={"message_id": answer_id, "rating": "meh"}
            )
        ).status_code == 422
        assert (
            await client.post(f"/internal/v1/conversations/{cid}/csat", json={"score": 6})
        ).status_code == 422
        assert (
            await client.post(f"/internal/v1/conversations/{cid}/csat", json={"score": 4})
        ).status_code == 204
    await chat.stop()  # flushes the analytics buffer
    feedback = fleet.events_of("feedback")
    assert feedback[0]["properties"]["rating"] == "down" and feedback[0]["properties"]["sources"] == ["d1"]
    # What the content-gap report needs of a thumbs-down: the question and the knowledge bases drawn on.
    assert feedback[0]["properties"]["question"] == "What is the build memory limit?"
    assert feedback[0]["properties"]["kb_ids"] == ["kb1"]
    assert fleet.events_of("csat")[0]["properties"]["score"] == 4
    answer = fleet.events_of("answer_sent")[0]["properties"]
    assert answer["provider"] == "extractive" and answer["sources"] == ["d1"] and answer["no_answer"] is False
    assert set(answer["latency_ms"]) == {"retrieval", "generation", "total"}  # as analytics reads them
    assert answer["question"] and answer["kb_ids"] == ["kb1"]
    assert fleet.events_of("message_received") and fleet.events_of("conversation_started")
    assert all(h.get("X-Tenant-ID") == "t-acme" for h in fleet.headers_of("/internal/v1/search"))


@pytest.mark.asyncio
async def test_client_message_id_makes_a_message_idempotent(
    chat: Any, fleet: Any, conversation_factory: Any
) -> None:
    async with chat.client() as client:
        cid = (await conversation_factory(client))["id"]
        body = {"text": "How do I add a custom domain?", "client_message_id": "m-1"}
        first = (await client.post(f"/internal/v1/conversations/{cid}/messages", json=body)).json()
        second = (await client.post(f"/internal/v1/conversations/{cid}/messages", json=body)).json()
        assert first["reply"]["id"] == second["reply"]["id"]
        messages = (await client.get(f"/internal/v1/conversations/{cid}")).json()["messages"]
        assert len(messages) == 2
        assert len(fleet.calls("/internal/v1/search")) == 1


@pytest.mark.asyncio
async def test_assistant_settings_round_trip_and_hide_api_keys(chat: Any) -> None:
    async with chat.client() as client:
        defaults = (await client.get("/internal/v1/assistant")).json()
        assert "человек" in defaults["escalation"]["handoff_phrases"]["ru"]
        assert "agent" in defaults["escalation"]["handoff_phrases"]["en"]
        assert defaults["providers"] is None and defaults["default_providers"] == ["extractive"]
        body = {
            "name": "Ada",
            "instructions": "Be brief.",
            "providers": ["openai-compatible", "extractive"],
            "provider_configs": {
                "openai-compatible": {"base_url": "http://127.0.0.1:1/v1", "api_key": "sk-secret"}
            },
            "greeting": {"en": "Hi!"},
            "tools": ["create_ticket"],
        }
        stored = (await client.put("/internal/v1/assistant", json=body)).json()
        assert stored["provider_configs"]["openai-compatible"] == {
            "model": None,
            "base_url": "http://127.0.0.1:1/v1",
            "api_key": None,
            "api_key_set": True,
            "timeout_seconds": None,
        }
        body["instructions"] = "Be very brief."
        body["provider_configs"] = {"openai-compatible": {"base_url": "http://127.0.0.1:1/v1"}}
        again = (
            await client.put("/internal/v1/assistant", json={**body, "default_providers": ["openai"]})
        ).json()
        assert again["default_providers"] == ["extractive"], "read-only: the service's, not stored"
        assert again["provider_configs"]["openai-compatible"]["api_key_set"] is True
        greeted = await client.post(
            "/internal/v1/conversations", json={"end_user_id": "u9", "profile": {"locale": "ru-RU"}}
        )
        assert greeted.status_code == 201
        opening = (await client.get(f"/internal/v1/conversations/{greeted.json()['id']}")).json()["messages"]
        assert [(m["role"], m["text"]) for m in opening] == [("assistant", "Hi!")]  # no Russian greeting set
        public = (await client.get("/internal/v1/assistant/greeting")).json()
        assert public == {"name": "Ada", "greeting": {"en": "Hi!"}}, "the widget's part, no settings"
        bad = await client.put(
            "/internal/v1/assistant", json={"escalation": {"rules": [{"name": "r", "pattern": "("}]}}
        )
        assert bad.status_code == 422
        assert (await client.put("/internal/v1/assistant", json={"providers": ["nope"]})).status_code == 422
