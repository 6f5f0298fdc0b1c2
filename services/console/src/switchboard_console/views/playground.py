"""Playground: chat as a customer, choose the providers, see the passages, scores and who answered."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, get_args

import pandas as pd
import streamlit as st

from switchboard_console import ui
from switchboard_console.client import GatewayClient, GatewayError
from switchboard_shared.contracts.chat import (
    CitationPacket,
    DonePacket,
    ErrorPacket,
    HandoffPacket,
    ProviderName,
    ResetPacket,
    TokenPacket,
    ToolCallPacket,
)

PROVIDERS: tuple[str, ...] = get_args(ProviderName)


def _turn(
    gateway: GatewayClient, conversation_id: str, text: str, providers: list[str], log: dict[str, Any]
) -> Iterator[str]:
    """Yields the answer's tokens for ``st.write_stream`` and fills ``log`` with everything else."""
    for packet in gateway.stream_turn(conversation_id, text, providers=providers or None):
        if isinstance(packet, TokenPacket):
            yield packet.text
        elif isinstance(packet, CitationPacket):
            log["citations"].append(packet.citation.model_dump())
        elif isinstance(packet, ToolCallPacket):
            log["tools"].append(f"{packet.name} ({packet.status})")
        elif isinstance(packet, HandoffPacket):
            log["handoff"] = packet.handoff.reason
        elif isinstance(packet, ErrorPacket):
            log["errors"].append(f"{packet.message} ({packet.code})")
        elif isinstance(packet, ResetPacket):
            log["citations"].clear()
            yield f"\n\n*(answer interrupted: {packet.reason}; starting again)*\n\n"
        elif isinstance(packet, DonePacket):
            log["result"] = packet.result.model_dump(mode="json")


def _show_details(entry: dict[str, Any]) -> None:
    result = entry.get("result") or {}
    reply = result.get("reply") or {}
    latency = result.get("latency") or {}
    cols = st.columns(4)
    cols[0].metric("Provider", reply.get("provider") or "—")
    cols[1].metric("Retrieval", f"{latency.get('retrieval_ms', 0):.0f} ms")
    cols[2].metric("Generation", f"{latency.get('generation_ms', 0):.0f} ms")
    cols[3].metric("Owner", result.get("owner", "—"))
    if reply.get("no_answer"):
        st.warning("The assistant found no support for an answer in the knowledge base.")
    if entry.get("handoff"):
        st.warning(f"Handed over to a person: {entry['handoff']}")
    for error in entry.get("errors", []):
        st.error(error)
    if entry.get("tools"):
        st.caption("Tools: " + ", ".join(entry["tools"]))
    citations = reply.get("citations") or entry.get("citations") or []
    for c in citations:
        url = c.get("url") or ""
        link = f"[{c['title']}]({url})" if url.startswith(("http://", "https://")) else c["title"]
        st.markdown(f"**[{c['index']}]** {link}")
    hits = entry.get("hits")
    if hits is not None:
        st.markdown("**Retrieved passages**")
        if hits:
            frame = pd.DataFrame(
                [
                    {
                        "score": h["score"],
                        "vector": h.get("vector_score"),
                        "bm25": h.get("bm25_score"),
                        "rerank": h.get("rerank_score"),
                        "title": h["title"],
                        "passage": h["snippet"],
                    }
                    for h in hits
                ]
            )
            st.dataframe(frame, hide_index=True, width="stretch")
        else:
            st.caption("No passage matched.")
    elif entry.get("search_error"):
        st.info(f"Passages: {entry['search_error']}")


def _tenant_chain(gateway: GatewayClient) -> list[str]:
    """The chain the tenant's answers use now: its own, or the service's default when it has none."""
    try:
        assistant = gateway.assistant()
    except GatewayError:
        return []
    chain = assistant.get("providers") or assistant.get("default_providers") or []
    return [name for name in chain if name in PROVIDERS]


def render() -> None:
    st.title("Playground")
    gateway = ui.client()
    st.caption("Chat as a customer would; every answer shows the passages retrieval found and who answered.")
    with st.sidebar:
        providers = st.multiselect(
            "Provider chain (in order)",
            PROVIDERS,
            default=_tenant_chain(gateway),
            help="Starts as the tenant's chain (Settings); change it to try other providers for this chat",
        )
        if st.button("New conversation", key="pg-new"):
            st.session_state.pop("pg_conversation", None)
            st.session_state["pg_log"] = []
    log: list[dict[str, Any]] = st.session_state.setdefault("pg_log", [])
    for past in log:
        with st.chat_message("user"):
            st.write(past["question"])
        with st.chat_message("assistant"):
            st.write(past.get("answer") or "")
            _show_details(past)

    question = st.chat_input("Ask as a customer…")
    if not question:
        return
    with st.chat_message("user"):
        st.write(question)
    if "pg_conversation" not in st.session_state:
        conversation = ui.attempt(gateway.start_playground, "Starting a conversation")
        if conversation is None:
            return
        st.session_state["pg_conversation"] = conversation["id"]
    entry: dict[str, Any] = {"question": question, "citations": [], "tools": [], "errors": []}
    with st.chat_message("assistant"):
        try:
            answer = st.write_stream(
                _turn(gateway, st.session_state["pg_conversation"], question, providers, entry)
            )
        except GatewayError as exc:
            ui.show_error(exc, "The answer failed")
            return
        entry["answer"] = answer if isinstance(answer, str) else "".join(map(str, answer))
        if not entry["answer"] and entry.get("result", {}).get("reply"):
            entry["answer"] = entry["result"]["reply"]["text"]
            st.write(entry["answer"])
        try:
            entry["hits"] = gateway.search(question, top_k=6)["hits"]
        except GatewayError as exc:
            entry["search_error"] = exc.plain()
        _show_details(entry)
    log.append(entry)
