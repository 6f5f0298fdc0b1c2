"""The README's configuration table, generated from the settings classes (``switchboard config-table``)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from switchboard_shared.registry import SERVICES
from switchboard_shared.settings import ServiceSettings

START = "<!-- settings-table:start -->"
END = "<!-- settings-table:end -->"


def _env_name(settings_class: type[BaseSettings], name: str, field: FieldInfo) -> str:
    alias = field.validation_alias
    choices = getattr(alias, "choices", None)
    if choices:
        return str(choices[0])
    prefix = str(settings_class.model_config.get("env_prefix", ""))
    return f"{prefix}{name}".upper()


def _default(field: FieldInfo) -> str:
    value: Any = field.get_default(call_default_factory=True)
    if value is None:
        return "—"
    if hasattr(value, "value"):
        value = value.value
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return f"`{text}`" if text else '`""`'


def settings_classes() -> list[tuple[str, type[ServiceSettings]]]:
    classes: list[tuple[str, type[ServiceSettings]]] = []
    for info in SERVICES:
        service = info.name
        module = importlib.import_module(info.settings_module)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, ServiceSettings)
                and value is not ServiceSettings
            ):
                if value.__module__ == module.__name__:
                    classes.append((service, value))
    return classes


def render() -> str:
    fleet_rows: dict[str, str] = {}
    service_rows: list[str] = []
    base_fields = set(ServiceSettings.model_fields)
    for service, settings_class in settings_classes():
        for name, field in settings_class.model_fields.items():
            env = _env_name(settings_class, name, field)
            row = f"| `{env}` | {_default(field)} | {field.description or ''} |"
            if env.startswith("SWITCHBOARD_"):
                fleet_rows[env] = row
            elif name in base_fields and name not in ("port", "database_url"):
                fleet_rows.setdefault(
                    f"<SERVICE>_{name.upper()}",
                    f"| `<SERVICE>_{name.upper()}` | "
                    f"{_default(ServiceSettings.model_fields[name])} | {field.description or ''} |",
                )
            else:
                service_rows.append(f"| {service} | {row[2:]}")
    lines = [
        "Fleet-wide settings (every service reads them; `<SERVICE>` is `GATEWAY`, `CHAT`, `RETRIEVAL`, "
        "`INTEGRATIONS` or `ANALYTICS`):",
        "",
        "| variable | default | meaning |",
        "| --- | --- | --- |",
        *sorted(fleet_rows.values()),
        "",
        "Per-service settings:",
        "",
        "| service | variable | default | meaning |",
        "| --- | --- | --- | --- |",
        *service_rows,
    ]
    return "\n".join(lines)


def update_readme(readme: Path) -> bool:
    """Rewrite the table between the markers; True when the file changed."""
    text = readme.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    updated = f"{head}{START}\n{render()}\n{END}{tail}"
    if updated != text:
        readme.write_text(updated)
        return True
    return False
