"""``switchboard``: run the local fleet (``up``), check it (``status``)."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from types import FrameType
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.table import Table

from switchboard_cli.commands.chat import chat as chat_command
from switchboard_cli.commands.eval import eval_command
from switchboard_cli.commands.ingest import ingest_command
from switchboard_cli.commands.keys import app as keys_app
from switchboard_cli.commands.telegram import app as telegram_app
from switchboard_cli.fleet import SERVICES, Fleet, console_specs, demo_crm_specs, fleet_specs, probe

app = typer.Typer(help="Switchboard: the customer-support assistant fleet.", no_args_is_help=True)
console = Console()


class _Stop(Exception):
    pass


def _raise_stop(_signum: int, _frame: FrameType | None) -> None:
    raise _Stop


@app.command()
def up(
    host: Annotated[str, typer.Option(help="Address every service binds to")] = "127.0.0.1",
    base_port: Annotated[int | None, typer.Option(help="First port; services take consecutive ports")] = None,
    data_dir: Annotated[Path, typer.Option(help="Where SQLite files, Chroma and logs go")] = Path("data"),
    ready_timeout: Annotated[float, typer.Option(help="Seconds to wait for every /readyz")] = 180.0,
    demo: Annotated[bool, typer.Option(help="Demo CRM, console, demo tenant and its keys")] = True,
    console_port: Annotated[int | None, typer.Option(help="Operator console port (default 8501)")] = None,
    exit_when_ready: Annotated[
        bool, typer.Option(help="Stop the fleet once it is ready (smoke test)")
    ] = False,
) -> None:
    """Start every service as its own process on embedded defaults, wait until ready, print the URLs."""
    specs = fleet_specs(host, base_port) + (demo_crm_specs(host, base_port) if demo else [])
    fleet = Fleet(specs, data_dir.resolve())
    signal.signal(signal.SIGTERM, _raise_stop)
    try:
        with console.status("Starting the Switchboard fleet…"):
            fleet.start()
            ready = fleet.wait_ready(ready_timeout)
        gateway = next(spec for spec in specs if spec.name == "gateway")
        keys = _demo_tenant(gateway.url, fleet.data_dir) if demo and all(ready.values()) else {}
        if demo and keys:
            # The console signs in with the demo tenant's admin key, so it starts once that exists.
            later = console_specs(host, console_port)
            fleet.start(later, {"CONSOLE_ADMIN_KEY": keys["admin_key"], "CONSOLE_GATEWAY_URL": gateway.url})
            with console.status("Starting the operator console…"):
                ready.update(fleet.wait_ready(ready_timeout, only=later))
        table = Table(title="Switchboard fleet")
        table.add_column("process")
        table.add_column("URL")
        table.add_column("state")
        for spec in specs:
            table.add_row(spec.name, spec.url, "[green]ready[/]" if ready[spec.name] else "[red]not ready[/]")
        console.print(table)
        if not all(ready.values()):
            console.print(f"[red]Not every process became ready; logs are in {data_dir / 'logs'}[/]")
            raise typer.Exit(1)
        if keys:
            _print_keys(keys)
        console.print(f"Gateway (public API): [bold]{gateway.url}[/]   API docs: {gateway.url}/docs")
        demo_page = f"{gateway.url}/?key={keys['widget_key']}" if keys else f"{gateway.url}/"
        console.print(f"Demo page with the chat widget: [bold]{demo_page}[/]")
        for spec in fleet.specs:
            if spec.name == "console":
                console.print(f"Operator console: [bold]{spec.url}[/]")
        console.print(f"Logs: {data_dir / 'logs'}   Press Ctrl-C to stop.")
        if exit_when_ready:
            return
        while True:
            exited = fleet.exited()
            if exited:
                console.print(f"[red]A process exited: {exited}; stopping the fleet.[/]")
                raise typer.Exit(1)
            time.sleep(0.5)
    except (KeyboardInterrupt, _Stop):
        console.print("Stopping…")
    finally:
        fleet.stop()
        console.print("Fleet stopped.")


def _demo_tenant(gateway_url: str, data_dir: Path) -> dict[str, str]:
    """Create (idempotently) the demo tenant and its keys, reusing the keys of an earlier run if valid."""
    from switchboard_cli.demo import bootstrap_demo, set_demo_greeting
    from switchboard_cli.operator import admin_token

    try:
        keys = bootstrap_demo(gateway_url, admin_token(), keys_file=data_dir / "demo-keys.json")
        set_demo_greeting(gateway_url.rstrip("/"), keys["admin_key"])
        return keys
    except (RuntimeError, httpx.HTTPError) as exc:  # the fleet still runs; say why the demo tenant is missing
        console.print(f"[yellow]Demo tenant not created: {exc}[/]")
        return {}


def _print_keys(keys: dict[str, str]) -> None:
    table = Table(title="Demo tenant")
    table.add_column("what")
    table.add_column("value")
    for name, value in keys.items():
        table.add_row(name, value)
    console.print(table)


@app.command()
def status(
    host: Annotated[str, typer.Option(help="Address the services listen on")] = "127.0.0.1",
    base_port: Annotated[int | None, typer.Option(help="First port, as given to `up`")] = None,
) -> None:
    """Show each service's readiness and its dependency checks."""
    table = Table(title="Switchboard status")
    for column in ("service", "URL", "ready", "checks", "breakers"):
        table.add_column(column)
    all_ready = True
    with httpx.Client(timeout=2.0) as client:
        for spec in fleet_specs(host, base_port):
            try:
                body = client.get(f"{spec.url}/readyz").json()
                ready = body.get("status") == "ready"
                checks = ", ".join(
                    f"{k}:{'ok' if v.get('ok') else 'FAIL'}" for k, v in body.get("checks", {}).items()
                )
                breakers = ", ".join(f"{k}:{v}" for k, v in body.get("breakers", {}).items())
            except (httpx.HTTPError, ValueError):
                ready, checks, breakers = False, "unreachable", ""
            all_ready = all_ready and ready and probe(client, spec.url)
            table.add_row(spec.name, spec.url, "[green]yes[/]" if ready else "[red]no[/]", checks, breakers)
    console.print(table)
    if not all_ready:
        raise typer.Exit(1)


@app.command("config-table")
def config_table(
    readme: Annotated[Path, typer.Option(help="README to update in place")] = Path("README.md"),
) -> None:
    """Regenerate the configuration table in the README from the settings classes."""
    from switchboard_cli.config_table import update_readme

    changed = update_readme(readme)
    console.print("README updated." if changed else "README already current.")


app.command("chat")(chat_command)
app.command("eval")(eval_command)
app.command("ingest")(ingest_command)
app.add_typer(keys_app, name="keys")
app.add_typer(telegram_app, name="telegram")

__all__ = ["SERVICES", "app"]


if __name__ == "__main__":
    app()
