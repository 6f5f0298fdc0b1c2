"""The declarative base of the retrieval service's own tables."""

from sqlalchemy.orm import DeclarativeBase

from switchboard_shared.db import make_metadata


class Base(DeclarativeBase):
    metadata = make_metadata()
