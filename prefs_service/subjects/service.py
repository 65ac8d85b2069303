"""Resolving, creating and changing people. Every creation and change is in
the audit trail, whichever door it came through (one write, a batch, a
correction, a person coming back)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from .. import audit
from ..audit import AuditEvent
from ..clock import utcnow
from ..errors import Conflict, NotFound
from ..extensions import db
from .identifiers import EXTERNAL_REF, KINDS, identifier_hash, normalize_fields
from .models import Identifier, Subject
from .refs import SUBJECT_ID, SubjectRef, find, find_ids, refuse_erased, refuse_if_erased

PROFILE_FIELDS = ("name", "external_ref")
T = TypeVar("T")


def get(subject_id: object) -> Subject:
    subject = db.session.get(Subject, _as_uuid(subject_id))
    if subject is None:
        raise NotFound("No subject with that id.")
    return subject


def exists(subject_id: uuid.UUID) -> bool:
    """A person we hold (erased ones are gone for every purpose but suppression)."""
    return db.session.scalar(sa.select(Subject.id).where(Subject.id == subject_id, Subject.erased_at.is_(None))) is not None


def resolve_one(ref: SubjectRef, *, actor: str, create: bool = True) -> Subject:
    """The person `ref` names; an unknown identifier or external_ref creates
    them when `create` (audited). Erased (409) when the ref names a person we
    erased: they are not re-created."""
    if ref.key == SUBJECT_ID:
        return refuse_if_erased(get(ref.subject_id))
    refuse_erased([ref])
    subject = find(ref)
    if subject is not None:
        return subject
    if not create:
        raise NotFound("No subject with that identifier.")
    subject, _ = find_or_create(values={ref.key: ref.value}, actor=actor)
    return subject


def resolve_many(refs: Sequence[SubjectRef], *, actor: str) -> dict[SubjectRef, uuid.UUID | None]:
    """Subject ids for many refs at once, creating people for unknown
    identifiers and external_refs in bulk, each creation audited. An unknown
    subject id maps to None. The caller refuses erased refs first."""
    found: dict[SubjectRef, uuid.UUID | None] = dict(find_ids(refs))
    to_create = sorted({ref for ref in refs if ref not in found and ref.key != SUBJECT_ID}, key=lambda r: (r.key, r.value))
    found.update({ref: None for ref in refs if ref not in found and ref.key == SUBJECT_ID})
    if not to_create:
        return found
    now = utcnow()
    new_subjects, new_identifiers, trail = [], [], []
    for ref in to_create:
        subject_id = uuid.uuid4()
        found[ref] = subject_id
        new_subjects.append(
            {"id": subject_id, "external_ref": ref.value if ref.key == EXTERNAL_REF else None, "created_at": now, "updated_at": now}
        )
        if ref.key != EXTERNAL_REF:
            new_identifiers.append(
                {"subject_id": subject_id, "kind": ref.key, "value": ref.value, "value_hash": ref.hash, "created_at": now}
            )
        trail.append(
            audit.row("subject.created", actor=actor, target_type="subject", target_id=subject_id, details={"via": "batch"}, at=now)
        )
    try:
        with db.session.begin_nested():
            db.session.execute(sa.insert(Subject), new_subjects)
            if new_identifiers:
                db.session.execute(sa.insert(Identifier), new_identifiers)
    except IntegrityError:
        raise Conflict("Another request created some of these subjects at the same moment; retry the batch.") from None
    db.session.execute(sa.insert(AuditEvent), trail)
    return found


def find_or_create(*, values: Mapping[str, Any], actor: str) -> tuple[Subject, bool]:
    """POST /v1/subjects: the subject whose external_ref or email matches, else a new one.

    Returns (subject, created). Identifiers already owned by someone else are a Conflict.
    """
    canonical = normalize_fields(values)
    external_ref = values.get("external_ref")
    refuse_erased(_refs_of(canonical, external_ref))
    existing = _matching(canonical, external_ref)
    if existing:
        return existing, False

    def create() -> Subject:
        subject = Subject(external_ref=external_ref, name=values.get("name"))
        db.session.add(subject)
        _set_identifiers(subject, canonical)
        return subject

    try:
        subject = _unique_or_conflict(create, canonical=canonical, external_ref=external_ref, owner=None)
    except Conflict:
        # Another request created this person a moment ago: theirs is ours.
        existing = _matching(canonical, external_ref)
        if existing is None:
            raise
        return existing, False
    audit.record("subject.created", actor=actor, target_type="subject", target_id=subject.id)
    return subject, True


def _matching(canonical: dict[str, str | None], external_ref: str | None) -> Subject | None:
    by_ref = find(SubjectRef(EXTERNAL_REF, external_ref)) if external_ref else None
    email = canonical.get("email")
    by_email = find(SubjectRef("email", email)) if email else None
    if by_ref and by_email and by_ref.id != by_email.id:
        raise Conflict("external_ref and email belong to two different subjects.", errors={"email": ["already belongs to another subject"]})
    return by_ref or by_email


def update(subject: Subject, *, values: Mapping[str, Any], actor: str) -> Subject:
    """PATCH: set or (with None) clear fields. Consent stays with the subject, so
    a changed address carries the person's choices with it. Nothing changes
    on a person we erased, and no key of an erased person is given to anyone."""
    refuse_if_erased(subject)
    canonical = normalize_fields(values)
    refuse_erased(_refs_of(canonical, values.get("external_ref")))

    def apply() -> list[str]:
        changed = [f for f in PROFILE_FIELDS if f in values and getattr(subject, f) != values[f]]
        for field in changed:
            setattr(subject, field, values[field])
        return changed + _set_identifiers(subject, canonical)

    changed = _unique_or_conflict(apply, canonical=canonical, external_ref=values.get("external_ref"), owner=subject.id)
    if changed:
        audit.record("subject.updated", actor=actor, target_type="subject", target_id=subject.id, details={"fields": sorted(changed)})
    return subject


def _refs_of(canonical: dict[str, str | None], external_ref: str | None) -> list[SubjectRef]:
    refs = [SubjectRef(kind, value) for kind, value in canonical.items() if value is not None]
    return refs + ([SubjectRef(EXTERNAL_REF, external_ref)] if external_ref else [])


def come_back(*, email: str, actor: str) -> Subject:
    """A person we erased, back by their own verified action (they opened a
    link mailed to `email`, typed the address and chose to hear from us): a new
    person holding that address. The only door that stores an erased key again;
    the caller lifts the address's erasure suppression with it."""
    subject = Subject()
    db.session.add(subject)
    _set_identifiers(subject, {"email": email})
    db.session.flush()
    audit.record("subject.returned", actor=actor, target_type="subject", target_id=subject.id)
    return subject


def identifiers_of(subject: Subject) -> dict[str, str | None]:
    """API view: {"email": ..., "phone": ..., "fax": ..., "postal_address": ...}."""
    return {kind: (ident.value if (ident := subject.identifier(kind)) else None) for kind in KINDS}


def _set_identifiers(subject: Subject, canonical: Mapping[str, str | None]) -> list[str]:
    changed = []
    for kind, value in canonical.items():
        current = subject.identifier(kind)
        if current is not None and current.value == value:
            continue
        if current is not None:
            subject.identifiers.remove(current)
            # The old row must be gone before a new one with another hash
            # takes its (subject, kind) place.
            db.session.flush()
        if value is not None:
            subject.identifiers.append(Identifier(kind=kind, value=value, value_hash=identifier_hash(kind, value)))
        changed.append(kind)
    return changed


def _unique_or_conflict(
    change: Callable[[], T], *, canonical: Mapping[str, str | None], external_ref: str | None, owner: uuid.UUID | None
) -> T:
    """Run `change()` and flush it in a savepoint, so a clash with another
    subject's identifier or external_ref becomes a Conflict naming the field."""
    try:
        with db.session.begin_nested():
            result = change()
            db.session.flush()
        return result
    except IntegrityError:
        pass
    clashes = {}
    for kind, value in canonical.items():
        if value is None:
            continue
        holder = db.session.scalar(sa.select(Identifier.subject_id).where(Identifier.value_hash == identifier_hash(kind, value)))
        if holder is not None and holder != owner:
            clashes[kind] = ["already belongs to another subject"]
    if external_ref:
        holder = db.session.scalar(sa.select(Subject.id).where(Subject.external_ref == external_ref))
        if holder is not None and holder != owner:
            clashes["external_ref"] = ["already belongs to another subject"]
    raise Conflict("An identifier already belongs to another subject.", errors=clashes)


def _as_uuid(value: object) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFound("No subject with that id.") from None
