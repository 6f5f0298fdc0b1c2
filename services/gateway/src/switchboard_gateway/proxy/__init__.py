"""The proxy hot path: thin pure ASGI, one pooled aiohttp session per upstream, streamed both ways."""
