"""The Switchboard operator console: Playground, Knowledge, Conversations, Handoff queue, Analytics, Settings.

A Streamlit app (``streamlit run switchboard_console/app.py``) that talks only to the gateway's public API
with a tenant's admin key; it owns no data.
"""
