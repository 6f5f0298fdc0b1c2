"""Streamlit page script: renders `switchboard_console.views.analytics`."""

from switchboard_console.views import analytics

analytics.render()
