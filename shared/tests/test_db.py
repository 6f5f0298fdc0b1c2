"""Engines, sessions and migrations on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import String, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from switchboard_shared.db import (
    create_engine,
    create_sessionmaker,
    is_sqlite,
    make_metadata,
    migrate,
    ping,
    session_scope,
)
from switchboard_shared.registry import SERVICE_NAMES


class Base(DeclarativeBase):
    metadata = make_metadata()


class Note(Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str] = mapped_column(String(200), unique=True)


@pytest.mark.asyncio
async def test_session_scope_commits_and_rolls_back(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await ping(engine)
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        sessionmaker = create_sessionmaker(engine)

        scope = session_scope(sessionmaker)
        session = await anext(scope)
        session.add(Note(body="kept"))
        with pytest.raises(StopAsyncIteration):
            await anext(scope)

        failing = session_scope(sessionmaker)
        session = await anext(failing)
        session.add(Note(body="lost"))
        with pytest.raises(RuntimeError):
            await failing.athrow(RuntimeError("handler failed"))

        async with sessionmaker() as check:
            bodies = (await check.scalars(select(Note.body))).all()
        assert bodies == ["kept"]
    finally:
        await engine.dispose()


@pytest.mark.asyncio
@pytest.mark.parametrize("service", SERVICE_NAMES)
async def test_every_service_migrates_to_head_on_both_backends(database_url: str, service: str) -> None:
    engine = create_engine(database_url)
    try:
        await migrate(engine, f"switchboard_{service}")
        await migrate(engine, f"switchboard_{service}")  # idempotent
        async with engine.connect() as conn:
            version = (await conn.execute(text("SELECT count(*) FROM alembic_version"))).scalar_one()
        assert version in (0, 1)
        assert is_sqlite(database_url) == database_url.startswith("sqlite")
    finally:
        await engine.dispose()
