"""Runs a service app under uvicorn with the shared logging set up (used by ``python -m switchboard_<name>``)."""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import TypeVar

import uvicorn
from fastapi import FastAPI

from switchboard_shared.logging import configure_logging
from switchboard_shared.settings import ServiceSettings

S = TypeVar("S", bound=ServiceSettings)


def serve(create_app: Callable[[S], FastAPI], settings: S) -> None:
    configure_logging(service=settings.service_name, level=settings.log_level, json=settings.log_json)
    app = create_app(settings)
    # Everything imported so far lives as long as the process: move it out of the collector's view, so the
    # full collections that requests trigger now and then scan only what requests made (shorter pauses,
    # a lower p99). https://docs.python.org/3/library/gc.html#gc.freeze
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
        timeout_keep_alive=settings.keep_alive_seconds,
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )


def serve_main(
    create_app: Callable[[S], FastAPI], settings_class: type[S], argv: list[str] | None = None
) -> None:
    """The ``python -m switchboard_<name>`` entry: settings from the environment, --host/--port override;
    ``python -m switchboard_<name> migrate`` brings the service's database to the head revision instead."""
    import argparse
    import sys

    arguments = sys.argv[1:] if argv is None else argv
    if arguments[:1] == ["migrate"]:
        from switchboard_shared.migrate import migrate_main

        migrate_main(settings_class, arguments[1:])
        return
    parser = argparse.ArgumentParser(prog=f"python -m switchboard_{settings_class.service_name}")
    parser.add_argument("--host", default=None)
    parser.add_argument("--port", type=int, default=None)
    args = parser.parse_args(arguments)
    overrides = {key: value for key, value in (("host", args.host), ("port", args.port)) if value is not None}
    settings = settings_class(**overrides)
    serve(create_app, settings)
