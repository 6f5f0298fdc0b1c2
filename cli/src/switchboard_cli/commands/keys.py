"""``switchboard keys create|list|revoke``: a tenant's API keys, through the gateway's admin API.

Authenticates with the fleet operator token (``GATEWAY_ADMIN_TOKEN``) or a tenant's ``ak_`` admin key.
"""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Create, list and revoke a tenant's API keys.", no_args_is_help=True)
console = Console()

GatewayOption = Annotated[
    str, typer.Option("--gateway", envvar="SWITCHBOARD_GATEWAY_URL", help="Gateway base URL")
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="GATEWAY_ADMIN_TOKEN",
        help="Operator token or an ak_ admin key (default: the gateway's configured admin token)",
        show_default=False,
    ),
]
TenantOption = Annotated[str, typer.Option("--tenant", "-t", help="Tenant id")]


def _token(token: str | None) -> str:
    if token:
        return token
    from switchboard_cli.operator import admin_token

    return admin_token()


def _call(method: str, gateway: str, token: str | None, path: str, **kwargs: Any) -> Any:
    try:
        response = httpx.request(
            method,
            f"{gateway.rstrip('/')}{path}",
            headers={"Authorization": f"Bearer {_token(token)}"},
            timeout=10.0,
            **kwargs,
        )
    except httpx.HTTPError as exc:
        console.print(f"[red]The gateway at {gateway} cannot be reached: {exc}[/]")
        raise typer.Exit(2) from exc
    if response.status_code >= 400:
        try:
            error = response.json()["error"]
            message = f"{error['message']} ({error['code']})"
        except (ValueError, KeyError, TypeError):
            message = response.text[:300]
        console.print(f"[red]HTTP {response.status_code}: {message}[/]")
        raise typer.Exit(1)
    return response.json()


@app.command("create")
def create(
    tenant: TenantOption,
    scope: Annotated[str, typer.Option(help="widget (pk_), server (sk_) or admin (ak_)")] = "server",
    name: Annotated[str, typer.Option(help="A name to recognise the key by")] = "",
    origin: Annotated[
        list[str] | None,
        typer.Option("--origin", help="Allowed origin of a widget key (repeat; http://localhost:* works)"),
    ] = None,
    requests_per_minute: Annotated[int | None, typer.Option(help="Rate limit (default: the scope's)")] = None,
    gateway: GatewayOption = "http://127.0.0.1:8000",
    token: TokenOption = None,
) -> None:
    """Create a key and print it (it is shown only this once)."""
    body: dict[str, Any] = {"scope": scope, "name": name, "allowed_origins": origin or []}
    if requests_per_minute is not None:
        body["requests_per_minute"] = requests_per_minute
    created = _call("POST", gateway, token, f"/v1/admin/tenants/{tenant}/keys", json=body)
    console.print(
        f"Created {created['scope']} key [bold]{created['id']}[/] for tenant {created['tenant_id']}:"
    )
    typer.echo(created["key"])


@app.command("list")
def list_keys(
    tenant: TenantOption,
    include_revoked: Annotated[bool, typer.Option(help="Show revoked keys too")] = False,
    gateway: GatewayOption = "http://127.0.0.1:8000",
    token: TokenOption = None,
) -> None:
    """List a tenant's keys (prefixes only: keys are stored hashed)."""
    keys = _call(
        "GET",
        gateway,
        token,
        f"/v1/admin/tenants/{tenant}/keys",
        params={"include_revoked": str(include_revoked).lower()},
    )
    table = Table(title=f"API keys of {tenant}")
    for column in ("id", "scope", "prefix", "name", "origins", "created", "revoked"):
        table.add_column(column)
    for key in keys:
        table.add_row(
            key["id"],
            key["scope"],
            key["prefix"] + "…",
            key["name"],
            ", ".join(key["allowed_origins"]),
            key["created_at"][:19],
            (key["revoked_at"] or "")[:19],
        )
    console.print(table)


@app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (from `keys list`)")],
    tenant: TenantOption,
    gateway: GatewayOption = "http://127.0.0.1:8000",
    token: TokenOption = None,
) -> None:
    """Revoke a key: it stops working at once on this gateway replica, within seconds on the others."""
    revoked = _call("DELETE", gateway, token, f"/v1/admin/tenants/{tenant}/keys/{key_id}")
    console.print(f"Revoked {revoked['scope']} key {revoked['id']} ({revoked['prefix']}…).")
