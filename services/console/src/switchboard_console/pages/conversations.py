"""Streamlit page script: renders `switchboard_console.views.conversations`."""

from switchboard_console.views import conversations

conversations.render()
