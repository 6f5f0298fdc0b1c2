"""The declarative base of the retrieval service's own tables."""

import uuid
from datetime import UTC, datetime

from sqlalchemy.orm import DeclarativeBase

from switchboard_shared.db import make_metadata


class Base(DeclarativeBase):
    metadata = make_metadata()


def new_id() -> str:
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)
