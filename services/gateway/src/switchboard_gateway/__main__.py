"""``python -m switchboard_gateway``: serve the gateway service with settings from the environment."""

from switchboard_gateway.main import create_app
from switchboard_gateway.settings import GatewaySettings
from switchboard_shared.serve import serve_main

if __name__ == "__main__":
    serve_main(create_app, GatewaySettings)
