"""Contract pieces shared by every service."""

from __future__ import annotations

import re
from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

T = TypeVar("T")


# C0 control characters but tab and line breaks, and DEL: the databases refuse NUL in text, and none of
# them belongs in what a person wrote.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def strip_control_characters(value: str) -> str:
    return CONTROL_CHARACTERS.sub("", value) if CONTROL_CHARACTERS.search(value) else value


def _clean(value: object) -> object:
    return strip_control_characters(value) if isinstance(value, str) else value


# Text a person wrote (a message): stored and passed on without control characters.
CleanText = Annotated[str, BeforeValidator(_clean)]


class Contract(BaseModel):
    """Base of every contract model: unknown fields are refused so drift is caught at the boundary."""

    model_config = ConfigDict(extra="forbid", frozen=False)


# The furthest a list may be paged: far beyond any page a person reads, far below what the databases'
# integers hold (SQLite and PostgreSQL refuse an OFFSET past 2**63 - 1 with an error, not an empty page).
MAX_PAGE_OFFSET = 1_000_000


class Page(Contract, Generic[T]):
    items: list[T]
    total: int = Field(ge=0)
    limit: int = Field(ge=1)
    offset: int = Field(ge=0, le=MAX_PAGE_OFFSET)
