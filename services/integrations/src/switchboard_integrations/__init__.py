"""Switchboard integrations service: CRM, ticketing, messenger channels and the human handoff queue."""
