"""Contract pieces shared by every service."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class Contract(BaseModel):
    """Base of every contract model: unknown fields are refused so drift is caught at the boundary."""

    model_config = ConfigDict(extra="forbid", frozen=False)


class Page(Contract, Generic[T]):
    items: list[T]
    total: int = Field(ge=0)
    limit: int = Field(ge=1)
    offset: int = Field(ge=0)
