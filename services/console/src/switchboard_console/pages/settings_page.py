"""Streamlit page script: renders `switchboard_console.views.settings_page`."""

from switchboard_console.views import settings_page

settings_page.render()
