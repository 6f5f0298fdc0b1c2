"""Rate limits per key and per end user, and the daily message/token budget of each tenant."""
