"""Who is calling: API keys and the operator token, widget origins, signed end-user identity."""
