"""Streamlit page script: renders `switchboard_console.views.evaluation`."""

from switchboard_console.views import evaluation

evaluation.render()
