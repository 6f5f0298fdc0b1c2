"""Handoff of the integrations service."""
