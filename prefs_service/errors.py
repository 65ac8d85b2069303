"""Errors the domain raises; adapters turn them into HTTP answers or CLI messages."""

from __future__ import annotations


class DomainError(Exception):
    def __init__(self, message: str, *, errors: dict | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors or {}


class NotFound(DomainError):
    """The thing asked for does not exist (or is not yours to see)."""


class Conflict(DomainError):
    """The request contradicts what is stored (e.g. an identifier owned by someone else)."""


class Invalid(DomainError):
    """The input breaks a rule; `errors` maps fields (or item indexes) to messages."""
