"""The ingest request body: the ``EventBatch`` contract, but any JSON value per slot.

Each element is validated on its own in the service (a string where an object belongs is one rejected
event, not a rejected batch).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from switchboard_shared.contracts.analytics import MAX_BATCH_EVENTS


class IngestBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[Any] = Field(max_length=MAX_BATCH_EVENTS, description="`Event` objects")
