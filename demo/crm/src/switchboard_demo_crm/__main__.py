"""``python -m switchboard_demo_crm --port 8010``: serve the demo CRM."""

from __future__ import annotations

import argparse
import os

import uvicorn

from switchboard_demo_crm.app import create_demo_crm


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m switchboard_demo_crm")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8010)
    parser.add_argument(
        "--token",
        default=os.environ.get("INTEGRATIONS_DEMO_CRM_TOKEN", "demo-crm-token"),
        help="Bearer token the CRM expects ('' disables auth)",
    )
    args = parser.parse_args(argv)
    app = create_demo_crm(args.token or None)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
