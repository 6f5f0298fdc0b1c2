"""The web widget's assets and the demo page (built by the frontend), served from ``static/``; the
gateway's icon at ``/favicon.ico`` whatever the static folder."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.responses import FileResponse
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

from switchboard_shared.errors import AppError, ErrorCode

FAVICON = Path(__file__).parent / "static" / "favicon.ico"
FAVICON_URL = "/favicon.ico"


class WidgetAssets(StaticFiles):
    """``/`` is the demo page (``index.html``); every asset may be embedded by any site's page."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            original = send

            async def sending(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [
                        *message.get("headers", []),
                        (b"access-control-allow-origin", b"*"),
                        (b"cross-origin-resource-policy", b"cross-origin"),
                    ]
                await original(message)

            send = sending
        await super().__call__(scope, receive, send)


def mount_static(app: FastAPI, directory: Path) -> None:
    """Mounted last, at ``/``: the API, docs and health routes registered before it take precedence."""

    @app.get(FAVICON_URL, include_in_schema=False)
    async def favicon() -> FileResponse:
        return FileResponse(
            FAVICON, media_type="image/x-icon", headers={"Cache-Control": "public, max-age=86400"}
        )

    if directory.is_dir():
        app.mount("/", WidgetAssets(directory=directory, html=True), name="static")
        return

    @app.get("/", include_in_schema=False)
    async def no_assets() -> None:
        raise AppError(
            ErrorCode.NOT_FOUND, "The widget assets are not built; the API is under /v1 (see /docs)."
        )
