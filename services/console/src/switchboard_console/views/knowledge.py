"""Knowledge: knowledge bases and their sources, sync with live progress, documents and chunks, test search."""

from __future__ import annotations

import time
from functools import partial
from typing import Any

import pandas as pd
import streamlit as st

from switchboard_console import ui
from switchboard_console.client import GatewayClient, GatewayError

SOURCE_KINDS = {
    "url": "A web page (URL)",
    "sitemap": "A site: sitemap or Read the Docs crawl",
    "confluence": "A Confluence space",
    "faq": "An FAQ file (CSV / JSON) on the retrieval server",
    "files": "A folder or fsspec path on the retrieval server",
}
FINISHED = ("succeeded", "failed")


def follow_job(gateway: GatewayClient, job: dict[str, Any], *, timeout: float = 600.0) -> dict[str, Any]:
    """Show a job's progress bar until it finishes (or ``timeout`` passes), polling the gateway."""
    bar = st.progress(0.0, text="Queued…")
    deadline = time.monotonic() + timeout
    while job["status"] not in FINISHED and time.monotonic() < deadline:
        seen, done = (
            job.get("documents_seen") or 0,
            (job.get("documents_done") or 0) + (job.get("documents_failed") or 0),
        )
        eta = f", about {job['eta_seconds']:.0f} s left" if job.get("eta_seconds") else ""
        bar.progress(
            min(done / seen, 1.0) if seen else 0.0, text=f"{job['status']}: {done}/{seen} documents{eta}"
        )
        time.sleep(0.5)
        job = gateway.job(job["id"])
    if job["status"] == "succeeded":
        bar.progress(1.0, text="Done")
        counts = job.get("counts") or {}
        st.success(
            f"Synced: {counts.get('documents_added', 0)} added, {counts.get('documents_updated', 0)} updated, "
            f"{counts.get('documents_unchanged', 0)} unchanged, {counts.get('documents_deleted', 0)} removed; "
            f"{job.get('chunks_embedded', 0)} chunks embedded."
        )
    elif job["status"] == "failed":
        st.error(f"The sync failed: {job.get('error') or 'see the failures below'}")
    else:
        st.info("Still running; reopen this page to see its progress.")
    for failure in job.get("failures") or []:
        st.warning(f"{failure['document']}: {failure['reason']}")
    return job


def _create_kb(gateway: GatewayClient) -> None:
    with st.form("new-kb", clear_on_submit=True):
        name = st.text_input("Name")
        description = st.text_area("Description", height=68)
        if st.form_submit_button("Create knowledge base") and name:
            created = ui.attempt(lambda: gateway.create_kb(name, description), "Creating the knowledge base")
            if created:
                st.session_state["kb_selected"] = created["id"]
                st.session_state["kb_flash"] = f"Created {created['name']}."
                st.rerun()


def _source_form(gateway: GatewayClient, kb_id: str) -> None:
    kind = st.selectbox(
        "Add a source", list(SOURCE_KINDS), format_func=SOURCE_KINDS.__getitem__, key="src-kind"
    )
    with st.form("new-source", clear_on_submit=True):
        name = st.text_input("Name (optional)")
        config: dict[str, Any] = {}
        if kind in ("url", "sitemap"):
            config["url"] = st.text_input("URL", placeholder="https://docs.example.com/")
            if kind == "sitemap":
                config["path_prefix"] = st.text_input("Only pages under this path (optional)") or None
        elif kind == "confluence":
            config["base_url"] = st.text_input(
                "Confluence URL", placeholder="https://acme.atlassian.net/wiki"
            )
            config["space_key"] = st.text_input("Space key")
            config["deployment"] = st.selectbox("Deployment", ["cloud", "datacenter"])
            config["email"] = st.text_input("Account e-mail (cloud)") or None
            config["api_token"] = st.text_input("API token", type="password")
        else:
            config["path"] = st.text_input("Path or fsspec URL")
            config["public_base_url"] = (
                st.text_input(
                    "Public address of these files (optional)",
                    placeholder="https://help.example.com/",
                    help="Citations link to it joined with each file's path; without it they show a title only.",
                )
                or None
            )
        submitted = st.form_submit_button("Add and sync")
    if not submitted:
        return
    body = {"type": kind, "name": name, "config": {k: v for k, v in config.items() if v}, "sync": True}
    created = ui.attempt(lambda: gateway.create_source(kb_id, body), "Adding the source")
    if created and created.get("job"):
        follow_job(gateway, created["job"])


def _upload(gateway: GatewayClient, kb_id: str) -> None:
    files = st.file_uploader(
        "Upload files (Markdown, RST, HTML, text, PDF, FAQ CSV/JSON)",
        accept_multiple_files=True,
        key="kb-upload",
    )
    if files and st.button("Upload and sync"):
        payload = [(f.name, f.getvalue(), f.type or "application/octet-stream") for f in files]
        accepted = ui.attempt(lambda: gateway.upload(kb_id, payload), "Uploading")
        if accepted:
            st.caption("Uploaded: " + ", ".join(accepted.get("files", [])))
            follow_job(gateway, accepted["job"])


def _sources(gateway: GatewayClient, kb_id: str) -> None:
    sources = ui.attempt(lambda: gateway.sources(kb_id), "Sources")
    if sources is None:
        return
    if not sources:
        st.caption("No sources yet.")
    for source in sources:
        cols = st.columns([4, 2, 2, 1])
        cols[0].markdown(f"**{source['name'] or source['type']}** · {source['type']}")
        cols[1].caption(f"Last sync: {ui.when(source.get('last_sync_at'))}")
        cols[2].caption(f"Status: {source.get('last_sync_status') or 'never synced'}")
        source_id: str = source["id"]
        if cols[3].button("Sync", key=f"sync-{source_id}"):
            job = ui.attempt(partial(gateway.sync_source, kb_id, source_id), "Sync")
            if job:
                follow_job(gateway, job)


def _documents(gateway: GatewayClient, kb_id: str) -> None:
    page = ui.attempt(lambda: gateway.documents(kb_id), "Documents")
    if page is None:
        return
    docs = page["items"]
    st.caption(f"{page['total']} documents")
    if not docs:
        return
    frame = pd.DataFrame(
        [
            {
                "title": d["title"] or d["name"],
                "status": d["status"],
                "chunks": d["chunk_count"],
                "language": d.get("language"),
                "updated": ui.when(d["updated_at"]),
                "error": d.get("error"),
            }
            for d in docs
        ]
    )
    st.dataframe(frame, hide_index=True, width="stretch")
    titles = {d["id"]: d["title"] or d["name"] for d in docs}
    doc_id = st.selectbox(
        "Open a document's chunks", list(titles), format_func=titles.__getitem__, key="kb-doc"
    )
    if doc_id:
        _document_actions(gateway, kb_id, next(d for d in docs if d["id"] == doc_id))
        chunks = ui.attempt(lambda: gateway.chunks(kb_id, doc_id), "Chunks")
        for chunk in (chunks or {}).get("items", []):
            heading = " › ".join(chunk.get("heading_path") or []) or chunk.get("title") or ""
            with st.expander(f"#{chunk['ordinal']} {heading}"):
                st.text(chunk["text"])


def _document_actions(gateway: GatewayClient, kb_id: str, doc: dict[str, Any]) -> None:
    """Re-sync one document from its source, or remove it from search and citations now."""
    st.caption(f"{doc['uri']}" + (f" · {doc['url']}" if doc.get("url") else ""))
    cols = st.columns(2)
    if cols[0].button("Re-sync this document", key=f"doc-sync-{doc['id']}"):
        job = ui.attempt(lambda: gateway.sync_document(kb_id, doc["id"]), "Re-sync")
        if job:
            follow_job(gateway, job)
    if cols[1].button("Delete this document", key=f"doc-delete-{doc['id']}"):
        st.session_state["kb-doc-confirm"] = doc["id"]
    if st.session_state.get("kb-doc-confirm") == doc["id"]:
        st.warning(
            f"Delete {doc['title'] or doc['name']}? It stops being found and cited now. An uploaded file is "
            "removed with it; a document still in another kind of source returns at that source's next sync."
        )
        confirm, cancel = st.columns(2)
        if confirm.button("Yes, delete it", key=f"doc-delete-yes-{doc['id']}"):
            st.session_state.pop("kb-doc-confirm", None)
            done = ui.attempt(lambda: gateway.delete_document(kb_id, doc["id"]), "Deleting the document")
            if done:
                st.session_state["kb_flash"] = f"Deleted {doc['title'] or doc['name']}."
                st.session_state.pop("kb-doc", None)
                st.rerun()
        if cancel.button("Keep it", key=f"doc-delete-no-{doc['id']}"):
            st.session_state.pop("kb-doc-confirm", None)
            st.rerun()


def _search(gateway: GatewayClient, kb_id: str) -> None:
    with st.form("kb-search"):
        query = st.text_input("Test a search")
        cols = st.columns(2)
        mode = cols[0].selectbox("Mode", ["hybrid", "vector", "bm25"])
        top_k = cols[1].number_input("Results", min_value=1, max_value=50, value=5)
        submitted = st.form_submit_button("Search")
    if submitted and query:
        result = ui.attempt(lambda: gateway.search(query, kb_id=kb_id, top_k=int(top_k), mode=mode), "Search")
        if result is not None:
            st.caption(f"{len(result['hits'])} results in {result['took_ms']:.0f} ms")
            for hit in result["hits"]:
                with st.container(border=True):
                    st.markdown(f"**{hit['title']}** · score {hit['score']:.3f}")
                    st.write(hit["snippet"])


def render() -> None:
    st.title("Knowledge")
    gateway = ui.client()
    try:
        kbs = gateway.kbs()
    except GatewayError as exc:
        ui.show_error(exc, "Knowledge bases")
        return
    with st.sidebar, st.expander("New knowledge base", expanded=not kbs):
        _create_kb(gateway)
    flash = st.session_state.pop("kb_flash", None)
    if flash:
        st.success(flash)
    if not kbs:
        st.info("No knowledge base yet: create one from the sidebar.")
        return
    names = {kb["id"]: kb["name"] for kb in kbs}
    default = (
        list(names).index(st.session_state["kb_selected"])
        if st.session_state.get("kb_selected") in names
        else 0
    )
    kb_id = st.selectbox("Knowledge base", list(names), index=default, format_func=names.__getitem__)
    kb = next(k for k in kbs if k["id"] == kb_id)
    cols = st.columns(3)
    cols[0].metric("Sources", kb.get("source_count", 0))
    cols[1].metric("Documents", kb.get("document_count", 0))
    cols[2].metric("Chunks", kb.get("chunk_count", 0))
    sources_tab, docs_tab, search_tab = st.tabs(["Sources", "Documents", "Search"])
    with sources_tab:
        _sources(gateway, kb_id)
        _upload(gateway, kb_id)
        _source_form(gateway, kb_id)
    with docs_tab:
        _documents(gateway, kb_id)
    with search_tab:
        _search(gateway, kb_id)
