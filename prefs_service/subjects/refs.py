"""Naming a person. Whichever key a caller uses (our subject id, their CRM's
external_ref, or an identifier), it is one `SubjectRef`, and every door that
names a person asks the same questions of it here: who is it, and did we erase
them at their request?
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from .. import channels
from ..db import fast, scopes
from ..db.backend import chunks
from ..errors import Erased, Invalid, NotFound
from ..extensions import db
from .identifiers import EXTERNAL_REF, KINDS, identifier_hash
from .models import Identifier, Subject, Suppression

SUBJECT_ID = "subject_id"
# The keys that may name a person in a write (an unknown identifier or
# external_ref creates them), and in a check (postal addresses too).
WRITE_KEYS = (SUBJECT_ID, EXTERNAL_REF, "email", "phone", "fax")
CHECK_KEYS = ("email", "phone", "fax", "postal_address", SUBJECT_ID, EXTERNAL_REF)

ERASURE = "erasure"  # the suppression reason that marks a key of an erased person
ERASED_MESSAGE = "This person asked us to erase their data: nothing more is recorded about them, unless they come back themselves."
_NAMES_ERASED = "names a person erased at their request"


@dataclass(frozen=True)
class SubjectRef:
    """One key naming one person, in canonical form: a subject id as text, an
    identifier normalised by its channel, or an external_ref as given."""

    key: str
    value: str

    @classmethod
    def parse(cls, key: str, raw: object) -> SubjectRef:
        """The ref `raw` makes under `key`; Invalid naming the field otherwise."""
        if not isinstance(raw, str):
            raise Invalid("The person's key is not valid.", errors={key: ["must be a string"]})
        if key == SUBJECT_ID:
            try:
                return cls(key, str(uuid.UUID(raw)))
            except ValueError:
                raise Invalid("The person's key is not valid.", errors={key: ["not a subject id"]}) from None
        if key == EXTERNAL_REF:
            return cls(key, raw)
        if key not in KINDS:
            raise ValueError(f"{key!r} cannot name a person")
        try:
            return cls(key, channels.normalize(key, raw))
        except channels.InvalidIdentifier as exc:
            raise Invalid("Some identifiers are not valid.", errors={key: [str(exc)]}) from None

    @classmethod
    def one_of(cls, fields: Mapping[str, Any], keys: tuple[str, ...] = WRITE_KEYS) -> SubjectRef:
        """The one key among `fields` (None counts as absent) that names the person."""
        given = [(key, fields[key]) for key in keys if fields.get(key) is not None]
        if len(given) != 1:
            choices = ", ".join(keys)
            raise Invalid(f"Name the person by exactly one of {choices}.", errors={"subject": [f"give exactly one of {choices}"]})
        return cls.parse(*given[0])

    @property
    def subject_id(self) -> uuid.UUID:
        assert self.key == SUBJECT_ID
        return uuid.UUID(self.value)

    @property
    def hash(self) -> bytes:
        """The keyed hash of an identifier or external_ref, as suppressions keep it."""
        assert self.key != SUBJECT_ID
        return identifier_hash(self.key, self.value)


def find(ref: SubjectRef) -> Subject | None:
    """The person `ref` names, erased or not; None when we hold nobody by it."""
    if ref.key == SUBJECT_ID:
        return db.session.get(Subject, ref.subject_id)
    if ref.key == EXTERNAL_REF:
        return db.session.scalar(sa.select(Subject).where(Subject.external_ref == ref.value))
    return db.session.scalar(sa.select(Subject).join(Identifier).where(Identifier.value_hash == ref.hash))


def find_ids(refs: Iterable[SubjectRef]) -> dict[SubjectRef, uuid.UUID]:
    """The ids of the people `refs` name, in a few statements; unknown ones are left out."""
    by_key: dict[str, set[SubjectRef]] = {}
    for ref in refs:
        by_key.setdefault(ref.key, set()).add(ref)
    found: dict[SubjectRef, uuid.UUID] = {}
    named = {ref.subject_id: ref for ref in by_key.get(SUBJECT_ID, ())}
    for chunk in chunks(sorted(named)):
        found.update((named[sid], sid) for sid in db.session.scalars(sa.select(Subject.id).where(Subject.id.in_(chunk))))
    external = {ref.value: ref for ref in by_key.get(EXTERNAL_REF, ())}
    for chunk in chunks(sorted(external)):
        by_ref = db.session.execute(sa.select(Subject.external_ref, Subject.id).where(Subject.external_ref.in_(chunk)))
        found.update((external[value], sid) for value, sid in by_ref if value is not None)
    hashed = {ref.hash: ref for kind in KINDS for ref in by_key.get(kind, ())}
    for chunk in chunks(list(hashed)):
        by_hash = db.session.execute(sa.select(Identifier.value_hash, Identifier.subject_id).where(Identifier.value_hash.in_(chunk)))
        found.update((hashed[value_hash], sid) for value_hash, sid in by_hash)
    return found


def erased(refs: Iterable[SubjectRef]) -> set[SubjectRef]:
    """Which refs name a person erased at their request: an erased subject's
    id, or a key (identifier or external_ref) whose hash an erasure suppressed.
    Every write that names a person asks this first."""
    refs = set(refs)
    found: set[SubjectRef] = set()
    ids = {ref.subject_id: ref for ref in refs if ref.key == SUBJECT_ID}
    for chunk in chunks(sorted(ids)):
        erased_ids = db.session.scalars(sa.select(Subject.id).where(Subject.id.in_(chunk), Subject.erased_at.is_not(None)))
        found.update(ids[subject_id] for subject_id in erased_ids)
    by_hash = {ref.hash: ref for ref in refs if ref.key != SUBJECT_ID}
    for chunk in chunks(list(by_hash)):
        erased_keys = db.session.scalars(
            sa.select(Suppression.value_hash).where(Suppression.value_hash.in_(chunk), Suppression.reason == ERASURE)
        )
        found.update(by_hash[value_hash] for value_hash in erased_keys)
    return found


def refuse_erased(refs: Iterable[SubjectRef]) -> None:
    """Erased (409) naming each field whose value names a person we erased."""
    gone = erased(refs)
    if gone:
        raise Erased(ERASED_MESSAGE, errors={ref.key: [_NAMES_ERASED] for ref in sorted(gone, key=lambda r: (r.key, r.value))})


def refuse_if_erased(subject: Subject) -> Subject:
    """The person, unless we erased them (Erased, 409)."""
    if subject.erased_at is not None:
        raise Erased(ERASED_MESSAGE, errors={SUBJECT_ID: [_NAMES_ERASED]})
    return subject


def live_id(ref: SubjectRef) -> uuid.UUID:
    """The id of the person `ref` names, by one read on the fast path (mailers
    mint links per recipient). NotFound for someone we do not hold, or erased."""
    if ref.key == SUBJECT_ID:
        value: object = ref.subject_id
    elif ref.key == EXTERNAL_REF:
        value = ref.value
    else:
        value = ref.hash
    found = fast.rows(_live_id_query(ref.key), {"value": value}, scope=scopes.current())
    if not found:
        raise NotFound("No subject with that id." if ref.key == SUBJECT_ID else "No subject with that identifier.")
    subject_id: uuid.UUID = found[0][0]
    return subject_id


@functools.cache
def _live_id_query(key: str) -> sa.Select[tuple[uuid.UUID]]:
    subjects = Subject.__table__
    if key in (SUBJECT_ID, EXTERNAL_REF):
        column = subjects.c.id if key == SUBJECT_ID else subjects.c.external_ref
        source: sa.FromClause = subjects
    else:
        column = Identifier.__table__.c.value_hash
        source = subjects.join(Identifier.__table__)
    return (
        sa.select(subjects.c.id)
        .select_from(source)
        .where(column == sa.bindparam("value", type_=column.type), subjects.c.erased_at.is_(None))
    )
