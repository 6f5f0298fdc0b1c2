"""Switchboard analytics service: Support events, metrics and PostHog export."""
