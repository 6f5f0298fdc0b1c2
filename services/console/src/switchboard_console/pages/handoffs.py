"""Streamlit page script: renders `switchboard_console.views.handoffs`."""

from switchboard_console.views import handoffs

handoffs.render()
