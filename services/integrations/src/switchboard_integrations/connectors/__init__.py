"""Connectors of the integrations service."""
