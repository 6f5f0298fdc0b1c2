"""Pydantic models of every inter-service request and response: the fleet's contracts.

One module per service that owns the endpoint (``retrieval``, ``chat``, ``integrations``, ``analytics``);
``common`` holds what they share.
"""
