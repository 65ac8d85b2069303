"""Every mapped table, imported in one place for Alembic and the drift test."""

from .access.models import ApiKey, StaffUser
from .audit import AuditEvent
from .consent.models import ConsentEvent, ConsentState, Decision, PolicyVersion, Purpose
from .extensions import db
from .ledger.models import LedgerCheckpoint, LedgerKey, LedgerLeaf, LedgerNode
from .notices.models import Notice
from .orders.models import Escalation, Order, Payment, ProvisionedSystem, StripeEvent
from .outbox import Job
from .partners.models import Disclosure, Partner
from .registers import partitions
from .registers.models import Enquiry, RegisterEntry, RegisterList
from .rights.agents import RequestAgent
from .rights.models import RightsRequest
from .subjects.models import Identifier, Subject, Suppression

__all__ = [
    "ApiKey",
    "AuditEvent",
    "ConsentEvent",
    "ConsentState",
    "Decision",
    "Disclosure",
    "Enquiry",
    "Escalation",
    "Identifier",
    "Job",
    "LedgerCheckpoint",
    "LedgerKey",
    "LedgerLeaf",
    "LedgerNode",
    "Notice",
    "Order",
    "Partner",
    "Payment",
    "PolicyVersion",
    "ProvisionedSystem",
    "Purpose",
    "RegisterEntry",
    "RegisterList",
    "RequestAgent",
    "RightsRequest",
    "StaffUser",
    "StripeEvent",
    "Subject",
    "Suppression",
    "db",
    "include_name",
]


def include_name(name: str | None, type_: str, parent_names: dict) -> bool:
    """Alembic's filter: the tables the models declare, not the register entries'
    partitions, which PostgreSQL creates per list (registers/partitions.py)."""
    return not (type_ == "table" and name is not None and partitions.is_partition(name))
