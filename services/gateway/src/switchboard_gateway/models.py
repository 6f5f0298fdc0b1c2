"""Imports every table of the gateway service so Alembic and tests see the whole metadata."""

from switchboard_gateway.db import Base
from switchboard_gateway.keys.models import ApiKey
from switchboard_gateway.openai_compat.models import CompletionThread
from switchboard_gateway.tenants.models import Tenant

__all__ = ["ApiKey", "Base", "CompletionThread", "Tenant"]
