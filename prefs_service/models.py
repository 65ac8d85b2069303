"""Every mapped table, imported in one place for Alembic and the drift test."""

from .access.models import ApiKey
from .audit import AuditEvent
from .consent.models import ConsentEvent, ConsentState, PolicyVersion, Purpose, Suppression
from .extensions import db
from .notices.models import Notice
from .outbox import Job
from .subjects.models import Identifier, Subject

__all__ = [
    "ApiKey",
    "AuditEvent",
    "ConsentEvent",
    "ConsentState",
    "Identifier",
    "Job",
    "Notice",
    "PolicyVersion",
    "Purpose",
    "Subject",
    "Suppression",
    "db",
]
