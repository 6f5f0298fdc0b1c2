"""``python -m switchboard_retrieval``: serve the retrieval service with settings from the environment."""

from switchboard_retrieval.main import create_app
from switchboard_retrieval.settings import RetrievalSettings
from switchboard_shared.serve import serve_main

if __name__ == "__main__":
    serve_main(create_app, RetrievalSettings)
