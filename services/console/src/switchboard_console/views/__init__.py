"""One module per console page, each with a ``render()`` the page script calls."""
