"""API keys: random, prefixed by scope, stored hashed, bound to one tenant."""
