"""Crm of the integrations service."""
