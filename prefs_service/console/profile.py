"""A person's record as staff see it: identifiers, current consent with its
evidence, the ledger, suppressions, requests, orders, disclosures and mail.
An erased person shows as erased, with no identifiers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from .. import channels, consent
from ..consent.models import ConsentEvent, ConsentState
from ..errors import Invalid
from ..extensions import db
from ..notices.models import Notice
from ..orders.models import Order
from ..partners import service as partners
from ..partners.models import Disclosure
from ..rights import queue as request_queue
from ..rights import service as rights
from ..rights.models import RightsRequest
from ..subjects import service as subjects
from ..subjects.identifiers import EXTERNAL_REF, KINDS, identifier_hash
from ..subjects.models import Subject, Suppression

LEDGER_PAGE = 25
# Reasons staff may give when they suppress an identifier themselves.
STAFF_SUPPRESSION_REASONS = ("manual", "objection", "complaint", "bounce")
DISCLOSURE_PURPOSES = {"share_for_fulfilment": "to fulfil an order", "share_for_marketing": "for their marketing"}
KIND_LABELS = {"email": "Email", "phone": "Phone", "fax": "Fax", "postal_address": "Postal address"}


@dataclass(frozen=True)
class ConsentRow:
    channel: str
    purpose: str
    label: str
    status: str | None
    allowed: bool
    reason: str
    since: datetime | None
    source: str | None
    evidence: dict[str, str | None]
    policy_version: str | None
    recorded_by: str | None


@dataclass(frozen=True)
class Profile:
    subject: Subject
    identifiers: dict[str, str | None]
    consents: list[ConsentRow]
    ledger: list[ConsentEvent]
    ledger_before: int | None  # the cursor of the next (older) page, if there is one
    suppressions: list[Suppression]
    requests: list[RightsRequest]
    orders: list[Order]
    disclosures: list[Disclosure]
    notices: list[Notice]

    @property
    def erased(self) -> bool:
        return self.subject.erased_at is not None

    def actors(self) -> set[str]:
        """Every recorded actor on the page, to be named for people."""
        recorded = (
            {e.recorded_by for e in self.ledger} | {s.created_by for s in self.suppressions} | {d.recorded_by for d in self.disclosures}
        )
        return recorded | {c.recorded_by for c in self.consents if c.recorded_by}


def load(subject_id: object, *, before: int | None = None) -> Profile:
    """The person's record; NotFound for an id we never held. `before` pages the ledger."""
    subject = subjects.get(subject_id)
    held = {} if subject.erased_at is not None else subjects.identifiers_of(subject)
    events = consent.history(subject=subject, limit=LEDGER_PAGE + 1, before=before)
    more = len(events) > LEDGER_PAGE
    events = events[:LEDGER_PAGE]
    email = subject.identifier("email")
    return Profile(
        subject=subject,
        identifiers=held,
        consents=_consents(subject),
        ledger=events,
        ledger_before=events[-1].id if more else None,
        suppressions=_suppressions(subject),
        requests=request_queue.requests_of(subject_id=subject.id, email_hash=email.value_hash if email else None),
        orders=list(db.session.scalars(sa.select(Order).where(Order.subject_id == subject.id).order_by(Order.created_at.desc()))),
        disclosures=partners.disclosures_of(subject.id),
        notices=list(
            db.session.scalars(sa.select(Notice).where(Notice.subject_id == subject.id).order_by(Notice.created_at.desc()).limit(100))
        ),
    )


def _consents(subject: Subject) -> list[ConsentRow]:
    """consent.current() for every channel and purpose, with the evidence of the event that set each."""
    current = consent.current(subject=subject)
    state_events = _state_events(subject.id)
    rows = []
    for item in current:
        event = state_events.get((item["channel"], item["purpose"]))
        purpose = channels.CHANNELS[item["channel"]].purpose(item["purpose"])
        rows.append(
            ConsentRow(
                channel=item["channel"],
                purpose=item["purpose"],
                label=purpose.label if purpose else item["purpose"],
                status=item["status"],
                allowed=item["allowed"],
                reason=item["reason"],
                since=item["occurred_at"],
                source=item["source"],
                evidence=_evidence(event),
                policy_version=event.policy_version if event else None,
                recorded_by=event.recorded_by if event else None,
            )
        )
    return rows


def _state_events(subject_id: uuid.UUID) -> dict[tuple[str, str], ConsentEvent]:
    stmt = sa.select(ConsentEvent).join(ConsentState, ConsentState.event_id == ConsentEvent.id).where(ConsentState.subject_id == subject_id)
    return {(e.channel, e.purpose): e for e in db.session.scalars(stmt)}


def _evidence(event: ConsentEvent | None) -> dict[str, str | None]:
    if event is None:
        return {}
    return {"ip": event.evidence_ip, "user_agent": event.evidence_user_agent, "note": event.evidence_note}


def _suppressions(subject: Subject) -> list[Suppression]:
    """Suppressions of the person's identifiers and CRM reference (by hash)."""
    hashes = [i.value_hash for i in subject.identifiers]
    if subject.external_ref:
        hashes.append(identifier_hash(EXTERNAL_REF, subject.external_ref))
    if not hashes:
        return []
    return list(db.session.scalars(sa.select(Suppression).where(Suppression.value_hash.in_(hashes)).order_by(Suppression.created_at)))


def suppress(*, subject_id: object, kind: str, reason: str, note: str | None, actor: str) -> bool:
    """Staff suppress one of the person's identifiers (audited). Returns whether it is new."""
    subject = subjects.get(subject_id)
    errors: dict[str, list[str]] = {}
    if kind not in KINDS:
        errors["kind"] = [f"must be one of: {', '.join(KINDS)}"]
    if reason not in STAFF_SUPPRESSION_REASONS:
        errors["reason"] = [f"must be one of: {', '.join(STAFF_SUPPRESSION_REASONS)}"]
    note = (note or "").strip() or None
    if note is not None and len(note) > 500:
        errors["note"] = ["at most 500 characters"]
    if errors:
        raise Invalid("The suppression is not valid.", errors=errors)
    held = subject.identifier(kind) if subject.erased_at is None else None
    if held is None:
        raise Invalid(f"We hold no {KIND_LABELS[kind].lower()} for this person.", errors={"kind": ["not held for this person"]})
    _, created = consent.suppress(kind=kind, value=held.value, reason=reason, note=note, actor=actor)
    return created


def start_request(
    *, subject_id: object, type: str, email: str | None, changes: dict[str, Any] | None, explanation: str | None, actor: str
) -> RightsRequest:
    """A request staff take for the person (by phone, by letter): staff checked
    who they are, so it starts verified. Mail goes to `email`, or the address we hold."""
    subject = subjects.get(subject_id)
    return rights.submit(
        type=type,
        subject_id=subject.id,
        email=(email or "").strip() or None,
        changes=changes if type == "correction" else None,
        explanation=explanation,
        verified=True,
        actor=actor,
    )
