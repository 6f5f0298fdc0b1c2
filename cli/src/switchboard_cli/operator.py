"""The fleet operator's token for the CLI's admin calls, read as the gateway reads it.

``GATEWAY_ADMIN_TOKEN`` from the environment or a ``.env`` file in the working directory, else the
development default the gateway runs with locally. The CLI does not import the gateway for it.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from switchboard_shared.settings import DEV_ADMIN_TOKEN


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", env_file=".env", extra="ignore")

    admin_token: str = Field(default=DEV_ADMIN_TOKEN)


def admin_token() -> str:
    """The operator token the local gateway runs with."""
    return OperatorSettings().admin_token
