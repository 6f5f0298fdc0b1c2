"""The demo shop's CRM: a small stand-alone server with a few customers and orders behind a bearer token,
that the demo tenant's order lookups reach in ``switchboard up``, docker-compose, the tests and the benchmarks.
Not part of the fleet: the integrations service talks to it as to any REST CRM.

Run it with ``python -m switchboard_demo_crm --port 8010``.
"""
