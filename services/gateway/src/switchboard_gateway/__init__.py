"""Switchboard gateway service: The one public entry: tenants and API keys, rate limits, routing to the fleet."""
