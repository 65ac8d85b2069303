"""Domain events: one domain reacts to another's change without either
importing the other for it. Subscriptions are wired in create_app, in one
place a newcomer can read; nothing subscribes by being imported.

A handler runs in the emitting transaction, so what it does (usually deferring
a job) commits or rolls back with the change that caused it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, current_app

CONSENT_WITHDRAWN = "consent.withdrawn"
"""A withdrawal became what decides a purpose (a newer event than any before): subject_id, channel, purpose."""
NOTICE_SENT = "notice.sent"
"""A notice left us (the mail server took it): notice."""

JOB_RETRIED = "job.retried"
"""Staff put a failed job back in the queue: job, actor. A handler may refuse by raising a DomainError."""
JOB_CANCELLED = "job.cancelled"
"""Staff cancelled a failed or queued job; it never runs again: job, actor."""

LEDGER_RECORDED = "consent.recorded"
"""Events were appended to the ledger in this transaction: sources ({source: how many})."""

EVENTS = (CONSENT_WITHDRAWN, NOTICE_SENT, JOB_RETRIED, JOB_CANCELLED, LEDGER_RECORDED)
Handler = Callable[..., None]


def init_app(app: Flask) -> None:
    app.extensions["prefs.hooks"] = {event: [] for event in EVENTS}


def subscribe(app: Flask, event: str, handler: Handler) -> None:
    if event not in EVENTS:
        raise ValueError(f"unknown event {event!r}; events: {', '.join(EVENTS)}")
    app.extensions["prefs.hooks"][event].append(handler)


def emit(event: str, **details: Any) -> None:
    for handler in current_app.extensions["prefs.hooks"][event]:
        handler(**details)
