from pathlib import Path

from switchboard_cli.config_table import END, START, render

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_configuration_table_is_current() -> None:
    text = README.read_text()
    current = text.split(START, 1)[1].split(END, 1)[0].strip()
    assert current == render().strip(), "README table is stale: run `.venv/bin/switchboard config-table`"


def test_table_lists_fleet_and_service_settings() -> None:
    table = render()
    assert "`SWITCHBOARD_INTERNAL_TOKEN`" in table
    assert "| chat | `CHAT_PORT` | `8001` |" in table
