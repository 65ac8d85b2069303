"""A person's enquiries: with their purchases, what makes an established
business relationship, the exemption from the US Do Not Call registry for
ENQUIRY_MONTHS after the enquiry (registers/screening.py)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from .. import audit
from ..clock import utcnow
from ..consent.events import MAX_CLOCK_SKEW
from ..errors import Invalid
from ..extensions import db
from ..subjects.models import Subject
from ..subjects.refs import refuse_if_erased
from .models import Enquiry


def record_enquiry(*, subject: Subject, occurred_at: datetime | None = None, actor: str) -> Enquiry:
    """Record that the person enquired (now, or when `occurred_at` says; not in
    the future). Erased (409) for a person we erased."""
    refuse_if_erased(subject)
    now = utcnow()
    if occurred_at is None:
        occurred_at = now
    elif occurred_at.tzinfo is None:
        raise Invalid("The enquiry's time is not valid.", errors={"occurred_at": ["must include a time zone, e.g. 2026-01-31T09:30:00Z"]})
    elif occurred_at > now + MAX_CLOCK_SKEW:
        raise Invalid("The enquiry's time is not valid.", errors={"occurred_at": ["is in the future"]})
    enquiry = Enquiry(subject_id=subject.id, occurred_at=occurred_at, recorded_at=now, recorded_by=actor)
    db.session.add(enquiry)
    db.session.flush()
    audit.record("enquiry.recorded", actor=actor, target_type="subject", target_id=subject.id, details={"enquiry_id": enquiry.id})
    return enquiry


def forget(*, subject_id: object) -> None:
    """Erasure: the person's enquiries go with the rest of their data (joins the caller's transaction)."""
    db.session.execute(sa.delete(Enquiry).where(Enquiry.subject_id == subject_id))
