"""Evaluation of answers through the public API, shared by `switchboard eval` and the console: the question
file, turning a turn into a scored result, and the scores."""
