"""Handoff queue: waiting and claimed conversations with transcript and customer; claim, reply (with each
reply's delivery state and a retry), return, resolve."""

from __future__ import annotations

import uuid
from functools import partial
from typing import Any

import streamlit as st

from switchboard_console import ui
from switchboard_console.client import GatewayClient, GatewayError

STATUSES = ["waiting", "claimed"]


DELIVERY = {
    "sent": ":green[:material/done_all: Delivered]",
    "stored": ":green[:material/done: In the chat]",
    "pending": ":orange[:material/schedule: Not delivered yet, retrying]",
    "failed": ":red[:material/error: Not delivered]",
}


def waiting_label(handoff: dict[str, Any]) -> str:
    """The customer's wait: it runs until a person first answers, not until someone claims the handoff."""
    minutes = handoff.get("waiting_seconds", 0) / 60
    if handoff.get("answered_at"):
        return f"answered after {minutes:.0f} min"
    return f"waiting {minutes:.0f} min"


def _replies(gateway: GatewayClient, handoff: dict[str, Any]) -> None:
    replies = handoff.get("replies") or []
    if not replies:
        return
    st.markdown("**Replies**")
    for reply in replies:
        status = reply["status"]
        cols = st.columns([5, 1])
        cols[0].markdown(f"{DELIVERY.get(status, status)} · {ui.when(reply.get('created_at'))}")
        cols[0].text(reply["text"])
        if status not in ("pending", "failed"):
            continue
        why = reply.get("last_error") or "no answer from the messenger yet"
        later = (
            f" · next try {ui.when(reply['next_attempt_at'])}"
            if status == "pending" and reply.get("next_attempt_at")
            else ""
        )
        cols[0].caption(f"{reply.get('attempts', 0)} attempts · {why}{later}")
        if cols[1].button("Retry now", key=f"retry-{reply['id']}"):
            if ui.attempt(partial(gateway.retry_reply, handoff["id"], reply["id"]), "Retry"):
                st.rerun()


def _reply_form(gateway: GatewayClient, hid: str, operator_id: str) -> None:
    """The draft survives a failed send and the live refresh; the same draft is sent under the same
    idempotency key, so pressing Send again never stores a second copy."""
    draft, pending, error = f"reply-text-{hid}", f"reply-key-{hid}", f"reply-error-{hid}"
    if st.session_state.pop(f"reply-sent-{hid}", False):
        st.session_state[draft] = ""
    with st.form(f"reply-{hid}", clear_on_submit=False):
        text = st.text_area("Reply to the customer", key=draft, height=80).strip()
        submitted = st.form_submit_button("Send reply")
    if submitted and text:
        kept = st.session_state.get(pending)
        key = kept[0] if kept and kept[1] == text else uuid.uuid4().hex
        st.session_state[pending] = (key, text)
        try:
            gateway.handoff_reply(hid, text, operator_id, idempotency_key=key)
        except GatewayError as exc:
            st.session_state[error] = exc.plain()
        else:
            for name in (pending, error):
                st.session_state.pop(name, None)
            st.session_state[f"reply-sent-{hid}"] = True
            st.rerun()
    if st.session_state.get(error):
        st.error(
            f"Reply not sent: {st.session_state[error]} Your text is kept; press Send reply to try again."
        )


def _card(gateway: GatewayClient, handoff: dict[str, Any], operator_id: str) -> None:
    hid = handoff["id"]
    title = (
        f"{handoff['end_user_id']} · {handoff['channel']} · {handoff['status']} · {waiting_label(handoff)}"
    )
    with st.expander(
        title, expanded=handoff["status"] == "claimed" and handoff.get("operator_id") == operator_id
    ):
        st.caption(f"Reason: {handoff['reason']}  ·  conversation {handoff['conversation_id']}")
        ticket = handoff.get("ticket")
        if ticket:
            st.caption(
                f"Ticket {ticket['system']} {ticket['external_id']}"
                + (f" — {ticket['url']}" if ticket.get("url") else "")
            )
        profile = handoff.get("profile")
        if profile:
            st.markdown("**Customer**")
            st.json({k: v for k, v in profile.items() if v})
        st.markdown("**Transcript**")
        for line in handoff.get("transcript") or []:
            st.markdown(f"*{line['role']}*: {line['text']}")
        _replies(gateway, handoff)
        cols = st.columns(3)
        if handoff["status"] == "waiting" and cols[0].button("Claim", key=f"claim-{hid}"):
            if ui.attempt(lambda: gateway.handoff_action(hid, "claim", operator_id), "Claim"):
                st.rerun()
        if cols[1].button("Return to bot", key=f"return-{hid}"):
            if ui.attempt(
                lambda: gateway.handoff_action(hid, "return", operator_id, "returned from the console"),
                "Return",
            ):
                st.rerun()
        if cols[2].button("Resolve", key=f"resolve-{hid}"):
            if ui.attempt(
                lambda: gateway.handoff_action(hid, "resolve", operator_id, "resolved from the console"),
                "Resolve",
            ):
                st.rerun()
        _reply_form(gateway, hid, operator_id)


def queue(gateway: GatewayClient) -> None:
    """The queue itself; runs as a fragment that refreshes on its own (it writes nothing to the sidebar)."""
    operator_id = st.session_state.get("operator_id") or ui.settings().operator_id
    page = ui.attempt(lambda: gateway.handoffs(STATUSES), "Handoff queue")
    if page is None:
        return
    items = page["items"]
    waiting = sum(1 for h in items if h["status"] == "waiting")
    st.caption(f"{waiting} waiting · {len(items) - waiting} claimed")
    if not items:
        st.success("Nobody is waiting for a person.")
    for handoff in items:
        _card(gateway, handoff, operator_id)


def render() -> None:
    st.title("Handoff queue")
    gateway = ui.client()
    with st.sidebar:
        st.text_input("Your operator id", value=ui.settings().operator_id, key="operator_id")
        live = st.toggle("Refresh live", value=True)
    if live:
        st.fragment(run_every=ui.settings().refresh_seconds)(queue)(gateway)
    else:
        queue(gateway)
