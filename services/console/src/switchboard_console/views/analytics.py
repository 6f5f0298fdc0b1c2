"""Analytics: the analytics service's reports as charts over a chosen range."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pandas as pd
import streamlit as st

from switchboard_console import ui
from switchboard_console.client import GatewayClient, GatewayError
from switchboard_shared.contracts.analytics import ALL_KNOWLEDGE_BASES


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} ms"


def _headline(overview: dict[str, Any]) -> None:
    volume, resolution = overview["volume"], overview["resolution"]
    satisfaction, latency = overview["satisfaction"], overview["latency"]
    cols = st.columns(6)
    cols[0].metric("Conversations", volume["conversations"])
    cols[1].metric(
        "Resolution", ui.percent(resolution.get("resolution_rate")), help=resolution.get("definition")
    )
    cols[2].metric("Escalation", ui.percent(resolution.get("escalation_rate")))
    cols[3].metric("Deflection", ui.percent(resolution.get("deflection_rate")))
    csat = satisfaction.get("csat_average")
    cols[4].metric(
        "CSAT", "—" if csat is None else f"{csat:.2f} / 5", help=f"{satisfaction['csat_responses']} responses"
    )
    cols[5].metric(
        "Latency p95", _ms(latency["total"].get("p95_ms")), help=f"p50 {_ms(latency['total'].get('p50_ms'))}"
    )


def _charts(overview: dict[str, Any]) -> None:
    volume = overview["volume"]
    st.subheader("Volume")
    if volume["days"]:
        days = pd.DataFrame(volume["days"]).set_index("day")
        st.line_chart(days[["conversations", "customer_messages", "answers", "handoffs"]])
    else:
        st.caption("No activity in this range.")
    left, right = st.columns(2)
    with left:
        st.subheader("Resolution")
        res = overview["resolution"]
        st.bar_chart(
            pd.DataFrame(
                {
                    "conversations": [
                        res["resolved_by_bot"],
                        res["escalated"],
                        res["deflected"],
                        res["pending"],
                    ]
                },
                index=["resolved by bot", "escalated", "deflected", "pending"],
            )
        )
        reasons = overview["escalations"]["reasons"]
        st.subheader("Escalation reasons")
        if reasons:
            st.bar_chart(pd.DataFrame({"handoffs": reasons}))
        else:
            st.caption("No handoff in this range.")
    with right:
        st.subheader("CSAT and thumbs")
        sat = overview["satisfaction"]
        if sat["csat_distribution"]:
            st.bar_chart(pd.DataFrame({"responses": sat["csat_distribution"]}))
        st.caption(
            f"Thumbs up {sat['thumbs_up']} · thumbs down {sat['thumbs_down']} · "
            f"up ratio {ui.percent(sat.get('thumbs_up_ratio'))}"
        )
        st.subheader("Latency")
        lat = overview["latency"]
        st.bar_chart(
            pd.DataFrame(
                {
                    "p50 ms": [lat[k].get("p50_ms") or 0 for k in ("retrieval", "generation", "total")],
                    "p95 ms": [lat[k].get("p95_ms") or 0 for k in ("retrieval", "generation", "total")],
                },
                index=["retrieval", "generation", "total"],
            )
        )
        providers = overview["providers"]["answers_by_provider"]
        if providers:
            st.subheader("Answers by provider")
            st.bar_chart(pd.DataFrame({"answers": providers}))


def _lists(gateway: GatewayClient, start: date, end: date, tz: str, documents: dict[str, str]) -> None:
    left, right = st.columns(2)
    with left:
        st.subheader("Top unanswered questions")
        try:
            unanswered = gateway.report("unanswered", start, end, tz, limit=20)
        except GatewayError as exc:
            ui.show_error(exc, "Unanswered questions")
        else:
            if unanswered["questions"]:
                st.dataframe(
                    pd.DataFrame(
                        [{"question": q["question"], "times": q["count"]} for q in unanswered["questions"]]
                    ),
                    hide_index=True,
                    width="stretch",
                )
            else:
                st.caption("Every question found an answer.")
    with right:
        st.subheader("Documents behind negative feedback")
        try:
            cited = gateway.report("documents", start, end, tz)
        except GatewayError as exc:
            ui.show_error(exc, "Documents")
        else:
            rows = [
                {
                    "document": documents.get(row["document_id"], row["document_id"]),
                    "thumbs-down answers citing it": row["cited_in_negative"],
                    "answers citing it": row["cited"],
                }
                for row in cited["most_cited_in_negative"]
            ]
            if rows:
                st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
            else:
                st.caption("No cited document received a thumbs-down.")


def _content_gaps(
    gateway: GatewayClient, start: date, end: date, tz: str, kbs: dict[str, str], documents: dict[str, str]
) -> None:
    """Per knowledge base, what customers asked that the bot refused or got a thumbs-down for, with the
    documents its wrong answers cited: the pages a writer should fix (or, without documents, add)."""
    st.subheader("Content gaps")
    try:
        report = gateway.report("content-gaps", start, end, tz, limit=10)
    except GatewayError as exc:
        ui.show_error(exc, "Content gaps")
        return
    if not report["knowledge_bases"]:
        st.caption("No question was refused or rated down in this range.")
        return
    for kb in report["knowledge_bases"]:
        kb_id = kb["kb_id"]
        title = "All knowledge bases" if kb_id == ALL_KNOWLEDGE_BASES else kbs.get(kb_id, kb_id)
        with st.expander(f"{title}: {kb['refused']} refused, {kb['rated_down']} rated down"):
            rows = [
                {
                    "question": gap["question"],
                    "asked": gap["count"],
                    "refused": gap["refused"],
                    "rated down": gap["rated_down"],
                    "documents cited": ", ".join(
                        documents.get(d["document_id"], d["document_id"]) for d in gap["documents"]
                    )
                    or "none: a page to add",
                    "other wordings": " · ".join(v for v in gap["variants"] if v != gap["question"]),
                }
                for gap in kb["gaps"]
            ]
            st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def render() -> None:
    st.title("Analytics")
    gateway = ui.client()
    today = date.today()
    cols = st.columns([2, 1])
    chosen = cols[0].date_input("Range", value=(today - timedelta(days=29), today), max_value=today)
    tz = cols[1].text_input("Time zone", value="UTC")
    if not isinstance(chosen, tuple) or len(chosen) != 2:
        st.caption("Choose the last day of the range.")
        return
    start, end = chosen
    try:
        overview = gateway.report("overview", start, end, tz)
    except GatewayError as exc:
        ui.show_error(exc, "Reports")
        return
    _headline(overview)
    _charts(overview)
    # Reports name documents by id: the names of the tenant's documents, read once for both lists.
    try:
        kbs = {kb["id"]: kb["name"] for kb in gateway.kbs()}
        documents = gateway.document_names(list(kbs))
    except GatewayError as exc:
        ui.show_error(exc, "Knowledge bases")
        kbs, documents = {}, {}
    _lists(gateway, start, end, tz, documents)
    _content_gaps(gateway, start, end, tz, kbs, documents)
    st.caption(
        f"Range {overview['range']['start']} – {overview['range']['end']} ({overview['range']['tz']})."
    )
