"""Who may use the service: API keys for other systems."""
