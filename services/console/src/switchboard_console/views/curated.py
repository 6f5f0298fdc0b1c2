"""Curated answers: the tenant's question -> answer pairs (list with hit counts, add, edit, delete), the
similarity threshold a message needs to get one, and the answers operators gave to questions the bot could
not answer, suggested for approval (approve as edited, merge with another suggestion, dismiss)."""

from __future__ import annotations

import zlib
from typing import Any

import pandas as pd
import streamlit as st

from switchboard_console import ui
from switchboard_console.client import GatewayClient

LANGUAGES = ["en", "ru"]


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _form(gateway: GatewayClient, entry: dict[str, Any] | None) -> None:
    key = entry["id"] if entry else "new"
    with st.form(f"curated-{key}", clear_on_submit=entry is None):
        question = st.text_input("Question", value=entry["question"] if entry else "")
        variants = st.text_area(
            "Other wordings (one per line)", value="\n".join(entry["variants"]) if entry else "", height=90
        )
        answer = st.text_area("Answer", value=entry["answer"] if entry else "", height=110)
        languages = ["auto", *LANGUAGES] if entry is None else LANGUAGES
        current = entry["language"] if entry else "auto"
        language = st.selectbox(
            "Language", languages, index=languages.index(current) if current in languages else 0
        )
        group = st.text_input(
            "Group (the same question in other languages)", value=(entry or {}).get("group") or ""
        )
        tags = st.text_input("Tags (comma-separated)", value=", ".join(entry["tags"]) if entry else "")
        saved = st.form_submit_button("Save" if entry else "Add curated answer")
    if not saved:
        return
    body: dict[str, Any] = {
        "question": question,
        "variants": _lines(variants),
        "answer": answer,
        "group": group.strip() or None,
        "tags": [t.strip() for t in tags.split(",") if t.strip()],
    }
    if language != "auto":
        body["language"] = language
    if entry is None:
        done = ui.attempt(lambda: gateway.create_curated(body), "Adding the curated answer")
    else:
        done = ui.attempt(lambda: gateway.update_curated(entry["id"], body), "Saving the curated answer")
    if done:
        st.session_state["curated_flash"] = "Saved."
        st.rerun()


def _threshold(gateway: GatewayClient) -> None:
    current = ui.attempt(gateway.curated_settings, "Loading the threshold")
    if current is None:
        return
    defaults = ", ".join(f"{model} {value:.2f}" for model, value in sorted(current["defaults"].items()))
    with st.form("curated-threshold"):
        own = st.toggle("Use my own threshold", value=current["threshold"] is not None)
        value = st.slider(
            "Similarity a message needs", 0.5, 1.0, float(current["threshold"] or 0.88), step=0.01
        )
        st.caption(f"Calibrated defaults: {defaults}. Lower answers more messages and risks wrong answers.")
        if st.form_submit_button("Save threshold"):
            if ui.attempt(
                lambda: gateway.save_curated_settings(value if own else None), "Saving the threshold"
            ):
                st.session_state["curated_flash"] = "Threshold saved."
                st.rerun()


def _suggestion(gateway: GatewayClient, group: dict[str, Any], others: list[dict[str, Any]]) -> None:
    """One group of suggestions: who asked what, the operator's reply, and what to do with it."""
    gid = group["id"]
    wordings = list(dict.fromkeys(s["question"] for s in group["suggestions"]))
    st.markdown(
        f"**{group['question']}** · {group['customers']} "
        f"{'customer' if group['customers'] == 1 else 'customers'} · last asked {ui.when(group['last_asked_at'])}"
    )
    if len(wordings) > 1:
        st.caption("Asked as: " + " · ".join(wordings))
    with st.form(f"suggestion-{gid}"):
        question = st.text_input("Question", value=group["question"], key=f"suggestion-question-{gid}")
        answer = st.text_area(
            "Answer (the operator's reply; edit before approving)",
            value=group["answer"],
            height=110,
            key=f"suggestion-answer-{gid}",
        )
        variants = st.text_area(
            "Customers' wordings (one per line; add the question in the other language too)",
            value="\n".join(wordings),
            height=90,
            # Keyed by the wordings too: a merge adds some, and the box must show them.
            key=f"suggestion-variants-{gid}-{zlib.crc32(chr(10).join(wordings).encode())}",
        )
        language = st.selectbox(
            "Language",
            LANGUAGES,
            index=LANGUAGES.index(group["language"]) if group["language"] in LANGUAGES else 0,
            key=f"suggestion-language-{gid}",
        )
        approved = st.form_submit_button("Approve as curated answer")
    if approved:
        body = {"question": question, "answer": answer, "language": language, "variants": _lines(variants)}
        done = ui.attempt(
            lambda: gateway.approve_suggestion(gid, body),
            "Approving the suggestion",
        )
        if done is not None:
            st.session_state["curated_flash"] = "Approved: customers asking this now get the curated answer."
            st.rerun()
    merge, dismiss = st.columns(2)
    with merge:
        if others:
            into = st.selectbox(
                "Asks the same as",
                [g["id"] for g in others],
                format_func=lambda other: next(g["question"] for g in others if g["id"] == other),
                key=f"suggestion-into-{gid}",
            )
            if st.button("Merge", key=f"suggestion-merge-{gid}"):
                if (
                    ui.attempt(lambda: gateway.merge_suggestion(gid, into), "Merging the suggestions")
                    is not None
                ):
                    st.session_state["curated_flash"] = "Merged."
                    st.rerun()
    with dismiss:
        if st.button("Dismiss", key=f"suggestion-dismiss-{gid}"):
            if ui.attempt(lambda: gateway.dismiss_suggestion(gid), "Dismissing the suggestion") is not None:
                st.session_state["curated_flash"] = "Dismissed."
                st.rerun()


def _suggestions(gateway: GatewayClient, groups: list[dict[str, Any]]) -> None:
    if not groups:
        st.info(
            "No suggestions: when an operator resolves a conversation the bot could not answer, the "
            "customer's question and the operator's reply wait here for approval."
        )
        return
    st.caption("Most asked first. Nothing reaches customers until you approve it.")
    for group in groups:
        with st.container(border=True):
            _suggestion(gateway, group, [g for g in groups if g["id"] != group["id"]])


def render() -> None:
    st.title("Curated answers")
    gateway = ui.client()
    flash = st.session_state.pop("curated_flash", None)
    if flash:
        st.success(flash)
    page = ui.attempt(gateway.curated, "Loading curated answers")
    entries: list[dict[str, Any]] = page["items"] if page else []
    if entries:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "question": e["question"],
                        "language": e["language"],
                        "group": e.get("group") or "",
                        "tags": ", ".join(e["tags"]),
                        "hits": e["hit_count"],
                        "last hit": ui.when(e["last_hit_at"]),
                        "expires": ui.when(e["expires_at"]),
                    }
                    for e in entries
                ]
            ),
            hide_index=True,
            width="stretch",
        )
    else:
        st.info("No curated answers yet: add the questions your customers ask most, with the exact answer.")
    suggested = ui.attempt(gateway.curated_suggestions, "Loading suggestions")
    groups: list[dict[str, Any]] = suggested["items"] if suggested else []
    if groups:
        what = "suggested answer waits" if len(groups) == 1 else "suggested answers wait"
        st.warning(
            f"{len(groups)} {what} for review: operators' replies to questions the bot could not answer."
        )
    add, edit, threshold, suggestions = st.tabs(
        ["Add", "Edit or delete", "Threshold", f"Suggestions ({len(groups)})"]
    )
    with add:
        _form(gateway, None)
    with edit:
        if entries:
            chosen = st.selectbox(
                "Curated answer",
                [e["id"] for e in entries],
                format_func=lambda answer_id: next(e["question"] for e in entries if e["id"] == answer_id),
            )
            entry = next(e for e in entries if e["id"] == chosen)
            _form(gateway, entry)
            if st.button("Delete", key="curated-delete") and ui.attempt(
                lambda: gateway.delete_curated(entry["id"]), "Deleting the curated answer"
            ):
                st.session_state["curated_flash"] = "Deleted."
                st.rerun()
    with threshold:
        _threshold(gateway)
    with suggestions:
        _suggestions(gateway, groups)
