"""Conversations: search and filter transcripts, open one with its messages and ownership events."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

import pandas as pd
import streamlit as st

from switchboard_console import ui
from switchboard_console.client import GatewayError

ANY = "any"
PAGE_SIZE = 50


def _transcript(conversation: dict[str, Any]) -> None:
    for message in conversation.get("messages", []):
        role = message["role"]
        avatar = {
            "user": "user",
            "assistant": "assistant",
            "operator": ":material/support_agent:",
            "system": ":material/settings:",
        }.get(role, "assistant")
        with st.chat_message(role if role in ("user", "assistant") else "assistant", avatar=avatar):
            label = {
                "operator": f"Operator {message.get('operator_id') or ''}".strip(),
                "system": "System",
            }.get(role)
            if label:
                st.caption(label)
            st.write(message["text"])
            meta = [ui.when(message["created_at"])]
            if message.get("provider"):
                meta.append(f"provider {message['provider']}")
            if message.get("no_answer"):
                meta.append("no supported answer")
            st.caption(" · ".join(meta))
            for c in message.get("citations") or []:
                st.caption(f"[{c['index']}] {c['title']}" + (f" — {c['url']}" if c.get("url") else ""))


def render() -> None:
    st.title("Conversations")
    gateway = ui.client()
    with st.form("conversation-filters"):
        cols = st.columns(5)
        channel = cols[0].selectbox("Channel", [ANY, "web", "telegram", "whatsapp", "api"])
        owner = cols[1].selectbox("Owner", [ANY, "bot", "human"])
        status = cols[2].selectbox("Status", [ANY, "open", "resolved"])
        since = cols[3].date_input("Updated since", value=None)
        end_user = cols[4].text_input("Customer id")
        st.selectbox(
            "Feedback", [ANY], disabled=True, help="The conversations API does not filter by feedback yet."
        )
        st.form_submit_button("Search")
    offset = int(st.session_state.get("conv_offset", 0))
    filters: dict[str, Any] = {
        "channel": None if channel == ANY else channel,
        "owner": None if owner == ANY else owner,
        "status": None if status == ANY else status,
        "end_user_id": end_user or None,
        "updated_after": datetime.combine(since, time.min, UTC).isoformat()
        if isinstance(since, date)
        else None,
        "limit": PAGE_SIZE,
        "offset": offset,
    }
    try:
        page = gateway.conversations(**filters)
    except GatewayError as exc:
        ui.show_error(exc, "Conversations")
        return
    items = page["items"]
    st.caption(
        f"{page['total']} conversations" + (f", showing {offset + 1}–{offset + len(items)}" if items else "")
    )
    if not items:
        st.info("No conversation matches.")
        return
    frame = pd.DataFrame(
        [
            {
                "id": c["id"],
                "customer": c["end_user_id"],
                "channel": c["channel"],
                "owner": c["owner"],
                "status": c["status"],
                "updated": ui.when(c["updated_at"]),
            }
            for c in items
        ]
    )
    st.dataframe(frame, hide_index=True, width="stretch")
    nav = st.columns(2)
    if offset > 0 and nav[0].button("← Newer"):
        st.session_state["conv_offset"] = max(offset - PAGE_SIZE, 0)
        st.rerun()
    if offset + len(items) < page["total"] and nav[1].button("Older →"):
        st.session_state["conv_offset"] = offset + PAGE_SIZE
        st.rerun()
    labels = {c["id"]: f"{c['end_user_id']} · {c['channel']} · {ui.when(c['updated_at'])}" for c in items}
    chosen = st.selectbox(
        "Open a conversation", list(labels), format_func=labels.__getitem__, key="conv-open"
    )
    if not chosen:
        return
    conversation = ui.attempt(lambda: gateway.conversation(chosen), "Conversation")
    if conversation is None:
        return
    left, right = st.columns([3, 2])
    with left:
        st.subheader("Transcript")
        _transcript(conversation)
    with right:
        st.subheader("Events")
        st.caption(
            f"Owner: {conversation['owner']} · status: {conversation['status']} · verified: {conversation['verified']}"
        )
        if conversation.get("profile"):
            st.json(conversation["profile"])
        try:
            events = gateway.transitions(chosen)
        except GatewayError as exc:
            ui.show_error(exc, "Events")
            return
        if not events:
            st.caption("No ownership or status change.")
        for event in events:
            st.markdown(
                f"- {ui.when(event['created_at'])}: **{event['field']}** {event['from_value']} → "
                f"{event['to_value']} by {event['actor']}"
                + (f" — {event['reason']}" if event.get("reason") else "")
            )
