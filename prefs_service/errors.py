"""Errors the domain raises; adapters turn them into HTTP answers or CLI messages."""

from __future__ import annotations


class DomainError(Exception):
    # The last part of the problem type URI (RFC 9457) the API answers with;
    # None answers "about:blank", the status alone saying what went wrong.
    problem_type: str | None = None

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


class Erased(Conflict):
    """The person named was erased at their own request: nothing may be
    recorded about them, and they are not re-created, until they come back by
    their own verified action."""

    problem_type = "erased"
