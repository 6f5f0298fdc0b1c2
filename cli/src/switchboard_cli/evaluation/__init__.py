"""``switchboard eval``: ask a question set through the public API and score retrieval and answers."""
