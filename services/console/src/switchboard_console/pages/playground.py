"""Streamlit page script: renders `switchboard_console.views.playground`."""

from switchboard_console.views import playground

playground.render()
