"""A small stand-alone CRM for demos and tests: a few customers and orders behind a bearer token.

Run it with ``python -m switchboard_integrations.demo_crm --port 8010``.
"""
