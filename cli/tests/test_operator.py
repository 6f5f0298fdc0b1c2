"""The CLI reads the operator token as the gateway does, without importing the gateway."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from switchboard_cli.operator import admin_token
from switchboard_shared.registry import SERVICES
from switchboard_shared.settings import DEV_ADMIN_TOKEN


def test_the_environment_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("GATEWAY_ADMIN_TOKEN=from-dotenv\n")
    monkeypatch.setenv("GATEWAY_ADMIN_TOKEN", "from-environment")
    assert admin_token() == "from-environment"


def test_a_dotenv_file_in_the_working_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GATEWAY_ADMIN_TOKEN", raising=False)
    (tmp_path / ".env").write_text("GATEWAY_ADMIN_TOKEN=from-dotenv\n")
    assert admin_token() == "from-dotenv"


def test_else_the_development_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GATEWAY_ADMIN_TOKEN", raising=False)
    assert admin_token() == DEV_ADMIN_TOKEN


def test_the_cli_does_not_import_a_service() -> None:
    code = (
        "import sys, switchboard_cli.main, switchboard_cli.commands.keys, switchboard_cli.commands.eval, "
        "switchboard_cli.operator; "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {[s.module for s in SERVICES]!r}))"
    )
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert imported.stdout.strip() == "[]"
