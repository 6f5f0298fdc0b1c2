"""``python -m switchboard_chat``: serve the chat service with settings from the environment."""

from switchboard_chat.main import create_app
from switchboard_chat.settings import ChatSettings
from switchboard_shared.serve import serve_main

if __name__ == "__main__":
    serve_main(create_app, ChatSettings)
