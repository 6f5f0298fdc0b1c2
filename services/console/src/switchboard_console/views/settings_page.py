"""Settings: API keys (create, revoke), the provider chain, escalation rules."""

from __future__ import annotations

from typing import Any, get_args

import pandas as pd
import streamlit as st

from switchboard_console import ui
from switchboard_console.client import GatewayClient
from switchboard_shared.contracts.chat import ProviderName

PROVIDERS: tuple[str, ...] = get_args(ProviderName)


def _keys(gateway: GatewayClient) -> None:
    tenant = ui.tenant_id()
    if tenant is None:
        st.info(
            "Signed in with the operator token: API keys are managed per tenant with a tenant's admin key."
        )
        return
    created = st.session_state.pop("key_created", None)
    if created:
        st.success("Key created. Copy it now: it is shown only this once.")
        st.code(created, language=None)
    show_revoked = st.toggle("Show revoked keys", value=False)
    keys = ui.attempt(lambda: gateway.keys(tenant, include_revoked=show_revoked), "API keys")
    if keys is None:
        return
    if keys:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "name": k["name"],
                        "scope": k["scope"],
                        "prefix": k["prefix"],
                        "origins": ", ".join(k["allowed_origins"]),
                        "per minute": k.get("requests_per_minute"),
                        "created": ui.when(k["created_at"]),
                        "revoked": ui.when(k.get("revoked_at")),
                    }
                    for k in keys
                ]
            ),
            hide_index=True,
            width="stretch",
        )
    active = {k["id"]: f"{k['name'] or k['prefix']} ({k['scope']})" for k in keys if not k.get("revoked_at")}
    if active:
        cols = st.columns([3, 1])
        victim = cols[0].selectbox("Revoke a key", list(active), format_func=active.__getitem__)
        if cols[1].button("Revoke", type="primary") and victim:
            if ui.attempt(lambda: gateway.revoke_key(tenant, victim), "Revoking"):
                st.rerun()
    with st.form("new-key", clear_on_submit=True):
        st.markdown("**New key**")
        scope_col, name_col = st.columns(2)
        scope = scope_col.selectbox("Scope", ["widget", "server", "admin"])
        name = name_col.text_input("Name")
        origins = st.text_input(
            "Allowed origins (widget keys; comma separated)", placeholder="https://shop.example.com"
        )
        submitted = st.form_submit_button("Create key")
    if submitted:
        body: dict[str, Any] = {"scope": scope, "name": name}
        if scope == "widget":
            body["allowed_origins"] = [o.strip() for o in origins.split(",") if o.strip()]
        key = ui.attempt(lambda: gateway.create_key(tenant, body), "Creating the key")
        if key:
            st.session_state["key_created"] = key["key"]
            st.rerun()


def _assistant(gateway: GatewayClient) -> None:
    current = ui.attempt(gateway.assistant, "Assistant settings")
    if current is None:
        return
    escalation = current.get("escalation") or {}
    with st.form("assistant"):
        st.markdown("**Providers**")
        chain = st.multiselect(
            "Provider chain, in order (a failure before the first token falls through to the next)",
            PROVIDERS,
            default=[p for p in current.get("providers") or [] if p in PROVIDERS],
            help="Empty: the service default"
            + (f" ({', '.join(defaults)})" if (defaults := current.get("default_providers")) else ""),
        )
        st.markdown("**Escalation**")
        frustration = st.toggle(
            "Hand over when the customer is frustrated", value=escalation.get("escalate_on_frustration", True)
        )
        unsupported = st.number_input(
            "Hand over after this many answers without support (0: service default)",
            min_value=0,
            max_value=20,
            value=int(escalation.get("max_unsupported_answers") or 0),
        )
        ticket = st.toggle("Open a ticket on handoff", value=escalation.get("create_ticket", True))
        rules = st.data_editor(
            pd.DataFrame(escalation.get("rules") or [], columns=["name", "pattern", "reason"]),
            num_rows="dynamic",
            width="stretch",
            key="rules-editor",
        )
        submitted = st.form_submit_button("Save")
    if not submitted:
        return
    rule_rows = [
        {"name": str(r["name"]), "pattern": str(r["pattern"]), "reason": str(r.get("reason") or "")}
        for r in rules.fillna("").to_dict("records")
        if str(r.get("name") or "").strip() and str(r.get("pattern") or "").strip()
    ]
    body = {
        **current,
        "providers": chain or None,
        "escalation": {
            **escalation,
            "escalate_on_frustration": frustration,
            "max_unsupported_answers": int(unsupported) or None,
            "create_ticket": ticket,
            "rules": rule_rows,
        },
    }
    if ui.attempt(lambda: gateway.save_assistant(body), "Saving"):
        st.success("Saved.")


def render() -> None:
    st.title("Settings")
    gateway = ui.client()
    keys_tab, assistant_tab = st.tabs(["API keys", "Providers and escalation"])
    with keys_tab:
        _keys(gateway)
    with assistant_tab:
        _assistant(gateway)
