"""``switchboard telegram set-webhook|webhook-info|delete-webhook``: point a Telegram bot at Switchboard.

``set-webhook`` calls the Bot API's ``setWebhook`` with the gateway's public webhook URL for the bot and
the secret token Telegram will send in ``X-Telegram-Bot-Api-Secret-Token`` (the integrations service
checks it; bind the bot with the same secret through ``/v1/connectors/channels``).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console

app = typer.Typer(help="Connect Telegram bots to Switchboard.", no_args_is_help=True)
console = Console()
TOKEN_RE = re.compile(r"^(\d{3,20}):[A-Za-z0-9_-]{20,}$")
SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")

TokenOption = Annotated[
    str, typer.Option("--bot-token", envvar="TELEGRAM_BOT_TOKEN", help="The bot's token from @BotFather")
]
ApiOption = Annotated[str, typer.Option("--api-base", envvar="TELEGRAM_API_BASE", help="Bot API base URL")]


def bot_id(token: str) -> str:
    match = TOKEN_RE.match(token)
    if not match:
        raise typer.BadParameter("a bot token looks like 123456789:AA…", param_hint="--bot-token")
    return match.group(1)


def call(api_base: str, token: str, method: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    url = f"{api_base.rstrip('/')}/bot{token}/{method}"
    try:
        response = httpx.post(url, json=payload or {}, timeout=15.0)
        body: dict[str, Any] = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        console.print(f"[red]Telegram could not be reached: {type(exc).__name__}[/]")
        raise typer.Exit(2) from exc
    if not body.get("ok"):
        console.print(f"[red]Telegram refused {method}: {body.get('description', response.status_code)}[/]")
        raise typer.Exit(1)
    return body


@app.command("set-webhook")
def set_webhook(
    bot_token: TokenOption,
    secret_token: Annotated[
        str,
        typer.Option(
            "--secret-token",
            envvar="TELEGRAM_WEBHOOK_SECRET",
            help="Sent back in X-Telegram-Bot-Api-Secret-Token",
        ),
    ],
    public_url: Annotated[
        str,
        typer.Option("--public-url", envvar="SWITCHBOARD_PUBLIC_URL", help="The gateway's public HTTPS URL"),
    ],
    api_base: ApiOption = "https://api.telegram.org",
    drop_pending_updates: Annotated[
        bool, typer.Option(help="Discard updates Telegram queued while no webhook was set")
    ] = False,
    max_connections: Annotated[int, typer.Option(min=1, max=100, help="Parallel webhook connections")] = 40,
) -> None:
    """Register ``<public-url>/v1/channels/telegram/<bot id>`` as the bot's webhook."""
    if not SECRET_RE.match(secret_token):
        raise typer.BadParameter("1-256 characters of A-Z, a-z, 0-9, _ and -", param_hint="--secret-token")
    url = f"{public_url.rstrip('/')}/v1/channels/telegram/{bot_id(bot_token)}"
    call(
        api_base,
        bot_token,
        "setWebhook",
        {
            "url": url,
            "secret_token": secret_token,
            "allowed_updates": ["message", "edited_message"],
            "drop_pending_updates": drop_pending_updates,
            "max_connections": max_connections,
        },
    )
    console.print(f"Webhook set: [bold]{url}[/]")


@app.command("webhook-info")
def webhook_info(bot_token: TokenOption, api_base: ApiOption = "https://api.telegram.org") -> None:
    """Show where the bot's updates go and the last delivery error Telegram saw."""
    bot_id(bot_token)
    info = call(api_base, bot_token, "getWebhookInfo").get("result", {})
    console.print(f"URL: {info.get('url') or '(none)'}")
    console.print(f"Pending updates: {info.get('pending_update_count', 0)}")
    if info.get("last_error_message"):
        console.print(f"[yellow]Last error: {info['last_error_message']}[/]")


@app.command("delete-webhook")
def delete_webhook(
    bot_token: TokenOption,
    api_base: ApiOption = "https://api.telegram.org",
    drop_pending_updates: Annotated[bool, typer.Option(help="Discard queued updates too")] = False,
) -> None:
    """Stop sending the bot's updates to Switchboard."""
    bot_id(bot_token)
    call(api_base, bot_token, "deleteWebhook", {"drop_pending_updates": drop_pending_updates})
    console.print("Webhook deleted.")
