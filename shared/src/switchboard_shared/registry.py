"""The fleet's services, written out once: name, package, default port, settings prefix and migrations.

Everything that needs the list of services (the local launcher, the test fleets, the benchmarks, the
configuration table, the migration entry points, the downstream clients) reads it from here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    """One service of the fleet."""

    name: str
    port: int
    settings_class: str
    has_migrations: bool = True

    @property
    def module(self) -> str:
        """The package, also the ``python -m`` entry that serves it."""
        return f"switchboard_{self.name}"

    @property
    def env_prefix(self) -> str:
        """The prefix of the service's own settings (``CHAT_``)."""
        return f"{self.name.upper()}_"

    @property
    def url_env(self) -> str:
        """The fleet-wide variable that tells every service where this one listens."""
        return f"SWITCHBOARD_{self.name.upper()}_URL"

    @property
    def settings_module(self) -> str:
        return f"{self.module}.settings"

    @property
    def migrations_package(self) -> str | None:
        """The package whose ``migrations/`` folder holds the service's Alembic scripts."""
        return self.module if self.has_migrations else None

    @property
    def default_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


SERVICES: tuple[ServiceInfo, ...] = (
    ServiceInfo("gateway", 8000, "GatewaySettings"),
    ServiceInfo("chat", 8001, "ChatSettings"),
    ServiceInfo("retrieval", 8002, "RetrievalSettings"),
    ServiceInfo("integrations", 8003, "IntegrationsSettings"),
    ServiceInfo("analytics", 8004, "AnalyticsSettings"),
)
SERVICE_NAMES: tuple[str, ...] = tuple(service.name for service in SERVICES)
BY_NAME: dict[str, ServiceInfo] = {service.name: service for service in SERVICES}

# Beside the five services, two more processes of the local fleet.
CONSOLE_PORT = 8501
DEMO_CRM_MODULE = "switchboard_demo_crm"  # demo/crm, its own distribution
DEMO_CRM_OFFSET = 10  # the demo CRM listens on the gateway's port + 10 (8010 by default)


def service(name: str) -> ServiceInfo:
    """The service called ``name``; ``KeyError`` for a name that is not one of the fleet's."""
    return BY_NAME[name]
