"""Tickets of the integrations service."""
