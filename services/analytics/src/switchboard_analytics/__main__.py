"""``python -m switchboard_analytics``: serve the analytics service with settings from the environment."""

from switchboard_analytics.main import create_app
from switchboard_analytics.settings import AnalyticsSettings
from switchboard_shared.serve import serve_main

if __name__ == "__main__":
    serve_main(create_app, AnalyticsSettings)
