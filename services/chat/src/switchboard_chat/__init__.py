"""Switchboard chat service: Conversations, the RAG turn, LLM providers, tools and handoff state."""
