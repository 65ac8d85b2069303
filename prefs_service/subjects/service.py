"""People and their identifiers: find, create, change.

Every identifier is normalised by its channel and found by its keyed hash.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import uuid

import sqlalchemy as sa
from flask import Flask, current_app
from sqlalchemy.exc import IntegrityError

from .. import audit, channels
from ..consent.models import Suppression
from ..errors import Conflict, Erased, Invalid, NotFound
from ..extensions import chunks, db
from ..statements import read_rows
from .models import Identifier, Subject

# API field name -> identifier kind.
IDENTIFIER_FIELDS = {"email": "email", "phone": "phone", "fax": "fax", "postal_address": "postal"}
PROFILE_FIELDS = ("name", "external_ref")
# An erased person's CRM reference is kept only as a keyed hash, a suppression
# of this kind, so that a later re-sync from the CRM is recognised.
EXTERNAL_REF_KIND = "external_ref"
ERASURE = "erasure"  # the suppression reason that marks a key of an erased person
ERASED_MESSAGE = "This person asked us to erase their data: nothing more is recorded about them, unless they come back themselves."


def init_app(app: Flask) -> None:
    key = app.config["PREFS"].identifier_key.encode()
    app.extensions["prefs.identifier_hmac"] = hmac.new(key, digestmod=hashlib.sha256)


def identifier_hash(kind: str, canonical: str) -> bytes:
    """HMAC-SHA256 of "kind:value" under the identifier key (which never rotates)."""
    mac = current_app.extensions["prefs.identifier_hmac"].copy()
    mac.update(f"{kind}:{canonical}".encode())
    return mac.digest()


def identifier_hashes(kind: str, canonicals) -> list[bytes]:
    base = current_app.extensions["prefs.identifier_hmac"]
    prefix = f"{kind}:"
    out = []
    for value in canonicals:
        mac = base.copy()
        mac.update((prefix + value).encode())
        out.append(mac.digest())
    return out


def normalize_fields(values: dict) -> dict[str, str | None]:
    """Canonical identifiers from API fields ({"email": ..., ...}); Invalid names each bad one.

    A None value is kept (it means "remove" in an update).
    """
    canonical, errors = {}, {}
    for field, kind in IDENTIFIER_FIELDS.items():
        if field not in values:
            continue
        if values[field] is None:
            canonical[field] = None
            continue
        try:
            canonical[field] = channels.normalize(kind, values[field])
        except channels.InvalidIdentifier as exc:
            errors[field] = [str(exc)]
    if errors:
        raise Invalid("Some identifiers are not valid.", errors=errors)
    return canonical


def get(subject_id) -> Subject:
    subject = db.session.get(Subject, _as_uuid(subject_id))
    if subject is None:
        raise NotFound("No subject with that id.")
    return subject


def exists(subject_id: uuid.UUID) -> bool:
    """A person we hold (erased ones are gone for every purpose but suppression)."""
    return db.session.scalar(sa.select(Subject.id).where(Subject.id == subject_id, Subject.erased_at.is_(None))) is not None


def key_hash(field: str, canonical: str) -> bytes:
    """The keyed hash that names a person by an API field (an identifier or
    their external_ref), as suppressions and erasures keep it."""
    return identifier_hash(EXTERNAL_REF_KIND if field == "external_ref" else IDENTIFIER_FIELDS[field], canonical)


def erased_refs(refs) -> set[tuple[str, str]]:
    """Which of the (field, canonical value) refs name a person erased at their
    request: an erased subject's id, or a key (identifier or external_ref) whose
    hash an erasure suppressed. Every write that names a person asks this first."""
    refs = set(refs)
    erased = set()
    ids = {}
    for field, value in refs:
        if field == "subject_id":
            try:
                ids[uuid.UUID(str(value))] = (field, value)
            except ValueError:
                continue
    for chunk in chunks(sorted(ids)):
        found = db.session.scalars(sa.select(Subject.id).where(Subject.id.in_(chunk), Subject.erased_at.is_not(None)))
        erased.update(ids[subject_id] for subject_id in found)
    by_hash = {key_hash(field, value): (field, value) for field, value in refs if field != "subject_id" and isinstance(value, str)}
    for chunk in chunks(list(by_hash)):
        found = db.session.scalars(sa.select(Suppression.value_hash).where(Suppression.value_hash.in_(chunk), Suppression.reason == ERASURE))
        erased.update(by_hash[value_hash] for value_hash in found)
    return erased


def refuse_if_erased(subject: Subject) -> Subject:
    """The person, unless we erased them (Erased, 409)."""
    if subject.erased_at is not None:
        raise Erased(ERASED_MESSAGE, errors={"subject_id": ["names a person erased at their request"]})
    return subject


def refuse_erased(refs) -> None:
    """Erased (409) naming each field whose value names a person we erased."""
    erased = erased_refs(refs)
    if erased:
        raise Erased(ERASED_MESSAGE, errors={field: ["names a person erased at their request"] for field, _ in sorted(erased)})


def find(*, subject_id=None, external_ref: str | None = None, kind: str | None = None, canonical: str | None = None) -> Subject | None:
    if subject_id is not None:
        return db.session.get(Subject, _as_uuid(subject_id))
    if external_ref is not None:
        return db.session.scalar(sa.select(Subject).where(Subject.external_ref == external_ref))
    if kind is not None and canonical is not None:
        return db.session.scalar(
            sa.select(Subject).join(Identifier).where(Identifier.value_hash == identifier_hash(kind, canonical))
        )
    raise ValueError("find() needs subject_id, external_ref or an identifier")


def find_or_create(*, values: dict, actor: str) -> tuple[Subject, bool]:
    """POST /v1/subjects: the subject whose external_ref or email matches, else a new one.

    Returns (subject, created). Identifiers already owned by someone else are a Conflict.
    """
    canonical = normalize_fields(values)
    external_ref = values.get("external_ref")
    refuse_erased(_keys_of(canonical, external_ref))
    by_ref = find(external_ref=external_ref) if external_ref else None
    by_email = find(kind="email", canonical=canonical["email"]) if canonical.get("email") else None
    if by_ref and by_email and by_ref.id != by_email.id:
        raise Conflict(
            "external_ref and email belong to two different subjects.",
            errors={"email": ["already belongs to another subject"]},
        )
    existing = by_ref or by_email
    if existing:
        return existing, False

    def create():
        subject = Subject(external_ref=external_ref, name=values.get("name"))
        db.session.add(subject)
        _set_identifiers(subject, canonical)
        return subject

    try:
        subject = _unique_or_conflict(create, canonical=canonical, external_ref=external_ref, owner=None)
    except Conflict:
        # Another request created this person a moment ago: theirs is ours.
        existing = (find(external_ref=external_ref) if external_ref else None) or (
            find(kind="email", canonical=canonical["email"]) if canonical.get("email") else None
        )
        if existing is None:
            raise
        return existing, False
    audit.record("subject.created", actor=actor, target_type="subject", target_id=subject.id)
    return subject, True


def update(subject: Subject, *, values: dict, actor: str) -> Subject:
    """PATCH: set or (with None) clear fields. Consent stays with the subject, so
    a changed address carries the person's choices with it. Nothing changes
    on a person we erased, and no key of an erased person is given to anyone."""
    refuse_if_erased(subject)
    canonical = normalize_fields(values)
    refuse_erased(_keys_of(canonical, values.get("external_ref")))

    def apply():
        changed = [f for f in PROFILE_FIELDS if f in values and getattr(subject, f) != values[f]]
        for field in changed:
            setattr(subject, field, values[field])
        return changed + _set_identifiers(subject, canonical)

    changed = _unique_or_conflict(apply, canonical=canonical, external_ref=values.get("external_ref"), owner=subject.id)
    if changed:
        audit.record("subject.updated", actor=actor, target_type="subject", target_id=subject.id, details={"fields": sorted(changed)})
    return subject


def _keys_of(canonical: dict[str, str | None], external_ref: str | None) -> list[tuple[str, str]]:
    keys = [(field, value) for field, value in canonical.items() if value is not None]
    return keys + ([("external_ref", external_ref)] if external_ref else [])


def _one_ref(ref: dict) -> tuple[str, object]:
    given = {k: v for k, v in ref.items() if v is not None}
    if len(given) != 1:
        raise Invalid(
            "Name the person by exactly one of subject_id, external_ref, email, phone or fax.",
            errors={"subject": ["give exactly one of subject_id, external_ref, email, phone, fax"]},
        )
    ((field, value),) = given.items()
    return field, value


def live_id(*, ref: dict) -> uuid.UUID:
    """The id of the person named by exactly one of subject_id, external_ref,
    email, phone or fax, by one prepared read (mailers mint links per
    recipient). NotFound for someone we do not hold, or erased."""
    field, value = _one_ref(ref)
    if field == "subject_id":
        value = _as_uuid(value)
    elif field != "external_ref":
        value = identifier_hash(IDENTIFIER_FIELDS[field], normalize_fields({field: value})[field])
    found = read_rows(_live_id_query(field), {"value": value})
    if not found:
        raise NotFound("No subject with that identifier." if field != "subject_id" else "No subject with that id.")
    return found[0][0]


@functools.cache
def _live_id_query(field: str):
    subjects = Subject.__table__
    if field in ("subject_id", "external_ref"):
        column = subjects.c.id if field == "subject_id" else subjects.c.external_ref
        source = subjects
    else:
        column = Identifier.__table__.c.value_hash
        source = subjects.join(Identifier.__table__)
    return sa.select(subjects.c.id).select_from(source).where(column == sa.bindparam("value", type_=column.type), subjects.c.erased_at.is_(None))


def resolve(*, ref: dict, actor: str, create: bool = True) -> tuple[Subject, bool]:
    """Find the person named by exactly one of subject_id, external_ref, email, phone
    or fax; an unknown identifier or external_ref creates them when `create`.
    Erased (409) when the ref names a person we erased: they are not re-created."""
    field, value = _one_ref(ref)
    if field == "subject_id":
        return refuse_if_erased(get(value)), False
    if field == "external_ref":
        refuse_erased([(field, value)])
        subject = find(external_ref=value)
        values = {"external_ref": value}
    else:
        canonical = normalize_fields({field: value})[field]
        refuse_erased([(field, canonical)])
        subject = find(kind=IDENTIFIER_FIELDS[field], canonical=canonical)
        values = {field: value}
    if subject is not None:
        return subject, False
    if not create:
        raise NotFound("No subject with that identifier.")
    return find_or_create(values=values, actor=actor)


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
    return {field: (ident.value if (ident := subject.identifier(kind)) else None) for field, kind in IDENTIFIER_FIELDS.items()}


def _set_identifiers(subject: Subject, canonical: dict[str, str | None]) -> list[str]:
    changed = []
    for field, value in canonical.items():
        kind = IDENTIFIER_FIELDS[field]
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
        changed.append(field)
    return changed


def _unique_or_conflict(change, *, canonical: dict, external_ref: str | None, owner):
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
    for field, value in canonical.items():
        if value is None:
            continue
        holder = db.session.scalar(
            sa.select(Identifier.subject_id).where(Identifier.value_hash == identifier_hash(IDENTIFIER_FIELDS[field], value))
        )
        if holder is not None and holder != owner:
            clashes[field] = ["already belongs to another subject"]
    if external_ref:
        holder = db.session.scalar(sa.select(Subject.id).where(Subject.external_ref == external_ref))
        if holder is not None and holder != owner:
            clashes["external_ref"] = ["already belongs to another subject"]
    raise Conflict("An identifier already belongs to another subject.", errors=clashes)


def _as_uuid(value) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFound("No subject with that id.") from None
