"""Streamlit page scripts (``st.Page`` files): each renders one view."""
