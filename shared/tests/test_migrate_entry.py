"""``python -m switchboard_<service> migrate``: each service migrates its own database with its own settings;
``switchboard_shared.migrate`` hands over to that entry and imports no service itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from switchboard_shared.registry import SERVICES


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "SWITCHBOARD_ENVIRONMENT": "test",
        "SWITCHBOARD_INTERNAL_TOKEN": "migrate-entry-internal-token",
        "SWITCHBOARD_DATA_DIR": str(tmp_path),
        "ANALYTICS_PSEUDONYM_SALT": "migrate-entry-salt",
    }


def test_a_service_migrates_its_own_database(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "switchboard_analytics", "migrate", "--wait", "5"],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert '"migrate.done"' in completed.stdout + completed.stderr
    assert (tmp_path / "analytics.db").exists()


def test_the_shared_entry_imports_no_service() -> None:
    code = (
        "import sys, switchboard_shared.migrate; "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {[s.module for s in SERVICES]!r}))"
    )
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert imported.stdout.strip() == "[]"
