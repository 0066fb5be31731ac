"""`digest serve`: the reader-facing web endpoint (one-click unsubscribe, provider webhooks)."""
