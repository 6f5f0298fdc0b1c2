"""What every console page shares: the signed-in gateway client, error display, small formatters."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import httpx
import streamlit as st

from switchboard_console.client import GatewayClient, GatewayError
from switchboard_console.settings import ConsoleSettings

T = TypeVar("T")


@st.cache_resource
def _http(gateway_url: str, admin_key: str, timeout: float) -> httpx.Client:
    return httpx.Client(
        base_url=gateway_url.rstrip("/"),
        headers={"Authorization": f"Bearer {admin_key}", "User-Agent": "switchboard-console"},
        timeout=timeout,
    )


def settings() -> ConsoleSettings:
    if "console_settings" not in st.session_state:
        st.session_state["console_settings"] = ConsoleSettings()
    loaded: ConsoleSettings = st.session_state["console_settings"]
    return loaded


def client() -> GatewayClient:
    """The gateway client of this session; asks for the admin key in the sidebar until one is given."""
    config = settings()
    st.session_state.setdefault("gateway_url", config.gateway_url)
    if "admin_key" not in st.session_state and config.admin_key is not None:
        st.session_state["admin_key"] = config.admin_key.get_secret_value()
    with st.sidebar:
        st.caption(f"Gateway: {st.session_state['gateway_url']}")
        if not st.session_state.get("admin_key"):
            with st.form("sign-in"):
                url = st.text_input("Gateway URL", value=st.session_state["gateway_url"])
                key = st.text_input("Admin key", type="password", placeholder="ak_…")
                if st.form_submit_button("Sign in") and key:
                    st.session_state["gateway_url"] = url
                    st.session_state["admin_key"] = key
                    st.rerun()
            st.info("Sign in with one of your tenant's admin keys (ak_…).")
            st.stop()
    gateway = GatewayClient(
        _http(st.session_state["gateway_url"], st.session_state["admin_key"], config.timeout_seconds),
        turn_timeout=config.turn_timeout_seconds,
    )
    with st.sidebar:
        if "tenant_id" not in st.session_state:
            try:
                st.session_state["tenant_id"] = gateway.whoami().get("tenant_id")
            except GatewayError as exc:
                st.error(exc.plain())
                if exc.status == 401 and st.button("Sign in again"):
                    del st.session_state["admin_key"]
                    st.rerun()
                st.stop()
        st.caption(f"Tenant: {st.session_state['tenant_id'] or '— (operator token)'}")
    return gateway


def tenant_id() -> str | None:
    value = st.session_state.get("tenant_id")
    return str(value) if value else None


def show_error(exc: GatewayError, what: str = "") -> None:
    prefix = f"{what}: " if what else ""
    if exc.not_available:
        st.info(f"{prefix}{exc.plain()}", icon=":material/construction:")
    else:
        st.error(f"{prefix}{exc.plain()}")


def attempt(call: Callable[[], T], what: str = "") -> T | None:
    """Run one gateway call; on an error answer show it in plain words and return None."""
    try:
        return call()
    except GatewayError as exc:
        show_error(exc, what)
        return None


def when(value: Any) -> str:
    if not value:
        return "—"
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return str(value)


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"
