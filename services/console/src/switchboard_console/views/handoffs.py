"""Handoff queue: waiting and claimed conversations with transcript and customer; claim, reply, return, resolve."""

from __future__ import annotations

from typing import Any

import streamlit as st

from switchboard_console import ui
from switchboard_console.client import GatewayClient

STATUSES = ["waiting", "claimed"]


def _card(gateway: GatewayClient, handoff: dict[str, Any], operator_id: str) -> None:
    hid = handoff["id"]
    minutes = handoff.get("waiting_seconds", 0) / 60
    title = (
        f"{handoff['end_user_id']} · {handoff['channel']} · {handoff['status']} · waiting {minutes:.0f} min"
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
        with st.form(f"reply-{hid}", clear_on_submit=True):
            text = st.text_area("Reply to the customer", key=f"reply-text-{hid}", height=80)
            if st.form_submit_button("Send reply") and text.strip():
                result = ui.attempt(lambda: gateway.handoff_reply(hid, text.strip(), operator_id), "Reply")
                if result is not None:
                    delivery = result.get("delivery")
                    st.success("Sent." + (f" Delivery: {delivery.get('status')}" if delivery else ""))


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
