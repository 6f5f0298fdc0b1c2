"""``python -m switchboard_analytics``: serve the analytics service with settings from the environment."""

from switchboard_shared.native_threads import size_native_threads

# Before numpy loads (report clustering): it sizes its BLAS thread pool when it does.
size_native_threads()

from switchboard_analytics.main import create_app  # noqa: E402
from switchboard_analytics.settings import AnalyticsSettings  # noqa: E402
from switchboard_shared.serve import serve_main  # noqa: E402

if __name__ == "__main__":
    serve_main(create_app, AnalyticsSettings)
