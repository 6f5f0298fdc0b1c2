"""``python -m switchboard_integrations``: serve the integrations service with settings from the environment."""

from switchboard_integrations.main import create_app
from switchboard_integrations.settings import IntegrationsSettings
from switchboard_shared.serve import serve_main

if __name__ == "__main__":
    serve_main(create_app, IntegrationsSettings)
