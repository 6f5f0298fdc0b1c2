"""The chat service's own Prometheus metrics (the shared ones, HTTP and outbound calls, are in switchboard_shared)."""

from prometheus_client import Counter

CURATED_SUGGESTIONS = Counter(
    "switchboard_chat_curated_suggestions_total",
    "Operators' answers sent to retrieval as suggested curated answers, by outcome: sent, refused (a 4xx, "
    "dropped) or retry (an attempt left in the outbox for later)",
    ["outcome"],
)
