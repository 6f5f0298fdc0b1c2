"""The console's entry point: ``streamlit run switchboard_console/app.py`` (what ``switchboard up`` runs)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

PAGES = Path(__file__).parent / "pages"

st.set_page_config(page_title="Switchboard console", page_icon=":material/headset_mic:", layout="wide")
navigation = st.navigation(
    [
        st.Page(PAGES / "playground.py", title="Playground", icon=":material/chat:", default=True),
        st.Page(PAGES / "knowledge.py", title="Knowledge", icon=":material/menu_book:"),
        st.Page(PAGES / "curated.py", title="Curated answers", icon=":material/verified:"),
        st.Page(PAGES / "conversations.py", title="Conversations", icon=":material/forum:"),
        st.Page(PAGES / "handoffs.py", title="Handoff queue", icon=":material/support_agent:"),
        st.Page(PAGES / "analytics.py", title="Analytics", icon=":material/monitoring:"),
        st.Page(PAGES / "evaluation.py", title="Evaluation", icon=":material/fact_check:"),
        st.Page(
            PAGES / "settings_page.py", title="Settings", icon=":material/settings:", url_path="settings"
        ),
    ]
)
navigation.run()
