"""Imports every table of the gateway service so Alembic and tests see the whole metadata."""

from switchboard_gateway.db import Base
from switchboard_gateway.keys.models import ApiKeyRow
from switchboard_gateway.tenants.models import TenantRow

__all__ = ["ApiKeyRow", "Base", "TenantRow"]
