"""The OpenAI-compatible API: ``/v1/chat/completions`` and ``/v1/models`` onto the tenant's assistant."""
