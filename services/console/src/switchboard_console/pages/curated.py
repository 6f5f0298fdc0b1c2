"""Streamlit page script: renders `switchboard_console.views.curated`."""

from switchboard_console.views import curated

curated.render()
