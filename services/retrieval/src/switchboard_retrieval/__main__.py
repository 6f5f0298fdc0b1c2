"""``python -m switchboard_retrieval``: serve the retrieval service with settings from the environment."""

from switchboard_shared.native_threads import size_native_threads

# Before numpy, ONNX Runtime, tokenizers and Chroma load: they size their thread pools when they do.
size_native_threads()

from switchboard_retrieval.main import create_app  # noqa: E402
from switchboard_retrieval.settings import RetrievalSettings  # noqa: E402
from switchboard_shared.serve import serve_main  # noqa: E402

if __name__ == "__main__":
    serve_main(create_app, RetrievalSettings)
