"""The outbox of every message we send, and its templates."""
