"""Who may do what: API keys, their roles, browser sessions and rate limits."""
