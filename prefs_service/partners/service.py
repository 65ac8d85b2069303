"""Partners, and the disclosure log: who received which of a person's data, and why.

Exports list the log; corrections and erasures tell every partner in it.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime

import sqlalchemy as sa

from .. import audit, channels, consent
from ..clock import utcnow
from ..errors import Conflict, Invalid, NotFound
from ..extensions import db
from ..notices import service as notices
from ..subjects import refs
from ..subjects import service as subjects
from .models import Disclosure, Partner

CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{1,39}$")
DATA_CATEGORIES = ("name", "email", "phone", "fax", "postal_address", "order", "billing")
PURPOSES = tuple(p.name for p in channels.CHANNELS["partner"].purposes)


def create_partner(*, code: str, name: str, contact_email: str, actor: str) -> Partner:
    errors = {}
    if not CODE.match(code or ""):
        errors["code"] = ["use 2-40 lower-case letters, digits, '-' or '_', starting with a letter or digit"]
    try:
        contact_email = channels.normalize("email", contact_email)
    except channels.InvalidIdentifier as exc:
        errors["contact_email"] = [str(exc)]
    if errors:
        raise Invalid("The partner is not valid.", errors=errors)
    if db.session.scalar(sa.select(Partner.id).where(Partner.code == code)):
        raise Conflict(f"A partner with code {code!r} exists.", errors={"code": ["already exists"]})
    partner = Partner(code=code, name=name.strip(), contact_email=contact_email)
    db.session.add(partner)
    db.session.flush()
    audit.record("partner.created", actor=actor, target_type="partner", target_id=partner.id, details={"code": code})
    return partner


def get_partner(code: str) -> Partner:
    partner = db.session.scalar(sa.select(Partner).where(Partner.code == code))
    if partner is None:
        raise NotFound(f"No partner with code {code!r}.")
    return partner


def record_disclosure(
    *,
    subject_id: uuid.UUID,
    partner_code: str,
    data_categories: list[str],
    purpose: str,
    occurred_at: datetime | None = None,
    actor: str,
) -> Disclosure:
    """Log that we gave a partner some of a person's data. Sharing for marketing
    needs the person's share_for_marketing consent; without it this is a Conflict."""
    errors = {}
    unknown = sorted(set(data_categories) - set(DATA_CATEGORIES))
    if not data_categories or unknown:
        errors["data_categories"] = [
            f"give at least one of: {', '.join(DATA_CATEGORIES)}" + (f" (unknown: {', '.join(unknown)})" if unknown else "")
        ]
    if purpose not in PURPOSES:
        errors["purpose"] = [f"must be one of: {', '.join(PURPOSES)}"]
    if occurred_at is not None and occurred_at > utcnow():
        errors["occurred_at"] = ["is in the future"]
    if errors:
        raise Invalid("The disclosure is not valid.", errors=errors)
    partner = get_partner(partner_code)
    refs.refuse_if_erased(subjects.get(subject_id))  # NotFound for nobody we hold
    verdict = consent.check(channel="partner", purpose=purpose, key="subject_id", value=str(subject_id))
    if not verdict.allowed:
        raise Conflict(
            f"The person has not agreed to {purpose.replace('_', ' ')} ({verdict.reason}).", errors={"purpose": [verdict.reason]}
        )
    disclosure = Disclosure(
        subject_id=subject_id,
        partner_id=partner.id,
        data_categories=sorted(set(data_categories)),
        purpose=purpose,
        occurred_at=occurred_at or utcnow(),
        recorded_by=actor,
    )
    db.session.add(disclosure)
    db.session.flush()
    audit.record("disclosure.recorded", actor=actor, target_type="subject", target_id=subject_id, details={"partner": partner.code})
    return disclosure


def disclosures_of(subject_id: uuid.UUID) -> list[Disclosure]:
    return list(db.session.scalars(sa.select(Disclosure).where(Disclosure.subject_id == subject_id).order_by(Disclosure.occurred_at)))


def tell_partners(*, subject_id: uuid.UUID, what: str, request_reference: str) -> int:
    """Notify each partner that received this person's data of an erasure or a
    correction (`what`). The mail names our subject id, never the person."""
    sent = 0
    seen = set()
    for disclosure in disclosures_of(subject_id):
        partner = disclosure.partner
        if partner.id in seen:
            continue
        seen.add(partner.id)
        notices.queue(
            kind=f"partner_{what}",
            recipient=partner.contact_email,
            template=f"partner_{what}",
            context={"partner_name": partner.name, "subject_ref": str(subject_id), "reference": request_reference},
            idempotency_key=f"partner-{what}:{request_reference}:{partner.code}",
        )
        sent += 1
    return sent
