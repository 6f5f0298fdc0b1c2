"""Channels of the integrations service."""
