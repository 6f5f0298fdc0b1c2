"""SQLAlchemy 2.0 async engines and sessions for SQLite (aiosqlite) and PostgreSQL (asyncpg), and Alembic."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import MetaData, event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

if TYPE_CHECKING:
    from alembic.config import Config

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def make_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(
    url: str, *, pool_size: int = 10, max_overflow: int = 20, echo: bool = False
) -> AsyncEngine:
    """An async engine with pool settings fit for the backend (SQLite: WAL, foreign keys, busy timeout)."""
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        memory = not database or database == ":memory:"
        # A small pool of kept-open connections: opening an aiosqlite connection (a thread, the file,
        # the pragmas) costs milliseconds per request. WAL lets the readers run beside one writer.
        engine = create_async_engine(
            url,
            echo=echo,
            connect_args={"timeout": 30, "check_same_thread": False},
            **({"poolclass": NullPool} if memory else {"pool_size": pool_size, "max_overflow": max_overflow}),
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_async_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=True,
        pool_recycle=1800,
        pool_timeout=10,
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def session_scope(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One session per request: commit when the handler returns, roll back when it raises."""
    async with sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


def alembic_config(package: str) -> Config:
    """The Alembic config of a service whose migrations live in ``<package>/migrations``.

    Alembic (with Mako) is imported here, when a migration runs, not with the engine: a service started
    without ``auto_migrate`` never loads it."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", f"{package}:migrations")
    return config


def _upgrade(connection: Connection, config: Config, revision: str) -> None:
    from alembic import command

    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def migrate(engine: AsyncEngine, package: str, revision: str = "head") -> None:
    """Run a service's Alembic migrations on an async engine (inside a running event loop)."""
    config = alembic_config(package)
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade, config, revision)


def migrate_url(url: str, package: str, revision: str = "head") -> None:
    """Run migrations from synchronous code (the CLI and the Kubernetes migrations Job)."""

    async def _run() -> None:
        engine = create_engine(url)
        try:
            await migrate(engine, package, revision)
        finally:
            await engine.dispose()

    asyncio.run(_run())
