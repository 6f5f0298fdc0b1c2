"""Switchboard retrieval service: Knowledge bases, ingestion and hybrid search over ChromaDB."""
