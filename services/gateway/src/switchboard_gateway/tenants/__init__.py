"""Tenants: the companies Switchboard serves, their budgets, limits, kill switch and identity secret."""
