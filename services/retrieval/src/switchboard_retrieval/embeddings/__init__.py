"""Embedding models: offline ones shipped inside PyPI packages, hosted ones behind the same interface."""

from switchboard_retrieval.embeddings.encoders import (
    EMBEDDING_MODELS,
    Embedder,
    EmbeddingRegistry,
    EmbeddingUnavailable,
)

__all__ = ["EMBEDDING_MODELS", "Embedder", "EmbeddingRegistry", "EmbeddingUnavailable"]
