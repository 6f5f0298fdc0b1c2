"""``python -m switchboard_shared.migrate <service>``: the entry the migrations Job, the compose
``migrate-*`` containers and the bundled-mode init containers run. Real processes, SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text

from switchboard_shared.db import alembic_config, create_engine

SERVICE = "chat"


def head_revision(service: str) -> str | None:
    head: str | None = ScriptDirectory.from_config(
        alembic_config(f"switchboard_{service}")
    ).get_current_head()
    return head


async def current_revision(url: str) -> str | None:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            row = (await conn.execute(text("SELECT version_num FROM alembic_version"))).first()
    finally:
        await engine.dispose()
    return None if row is None else str(row[0])


def migrate_process(service: str, url: str, cwd: Path) -> subprocess.Popen[str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "SWITCHBOARD_ENVIRONMENT": "test",
        "SWITCHBOARD_INTERNAL_TOKEN": "migrate-test-internal-token",
        f"{service.upper()}_DATABASE_URL": url,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "switchboard_shared.migrate", service, "--wait", "20"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_migrate_brings_the_database_to_head(database_url: str, tmp_path: Path) -> None:
    head = head_revision(SERVICE)
    if head is None:
        pytest.skip(f"{SERVICE} has no migration revisions yet")
    process = migrate_process(SERVICE, database_url, tmp_path)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    assert '"migrate.done"' in output
    assert asyncio.run(current_revision(database_url)) == head
    again = migrate_process(SERVICE, database_url, tmp_path)
    output, _ = again.communicate(timeout=120)
    assert again.returncode == 0, output


@pytest.mark.postgres
def test_concurrent_migrations_serialise_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    head = head_revision(SERVICE)
    if head is None:
        pytest.skip(f"{SERVICE} has no migration revisions yet")
    processes = [migrate_process(SERVICE, postgres_url, tmp_path) for _ in range(3)]
    outputs = [process.communicate(timeout=120)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0], outputs
    assert asyncio.run(current_revision(postgres_url)) == head


def test_unreachable_database_fails_after_the_wait(tmp_path: Path) -> None:
    url = "postgresql+asyncpg://nobody:nothing@127.0.0.1:9/none"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "SWITCHBOARD_ENVIRONMENT": "test",
        "SWITCHBOARD_INTERNAL_TOKEN": "migrate-test-internal-token",
        "CHAT_DATABASE_URL": url,
    }
    completed = subprocess.run(
        [sys.executable, "-m", "switchboard_shared.migrate", SERVICE, "--wait", "1"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode != 0
    assert "database not reachable after 1 s" in completed.stderr
