"""Streamlit page script: renders `switchboard_console.views.knowledge`."""

from switchboard_console.views import knowledge

knowledge.render()
