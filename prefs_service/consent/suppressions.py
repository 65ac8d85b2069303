"""Suppressions: identifiers never to be contacted (a bounce, a complaint, an
objection), whatever consent says, until the person lifts one by their own grant.

A suppression names an identifier by its keyed hash and silences the channel
that uses it (an email bounce says nothing about calling). The table lives
with the identifiers (subjects/models.py): erasure keeps its keys there too.
"""

from __future__ import annotations

from .. import audit, channels
from ..clock import utcnow
from ..db.backend import backend
from ..errors import Invalid
from ..extensions import db
from ..subjects.identifiers import identifier_hash
from ..subjects.models import Subject, Suppression
from . import decisions
from .events import SELF

REASONS = ("bounce", "complaint", "objection", "manual", "erasure")


def suppress(*, kind: str, value: str, reason: str, note: str | None = None, actor: str) -> tuple[Suppression, bool]:
    """Never contact this identifier again (until lifted). Returns (row, created)."""
    if reason not in REASONS:
        raise Invalid("Unknown suppression reason.", errors={"reason": [f"must be one of: {', '.join(REASONS)}"]})
    try:
        canonical = channels.normalize(kind, value)
    except channels.InvalidIdentifier as exc:
        raise Invalid("Not a valid identifier.", errors={"value": [str(exc)]}) from None
    value_hash = identifier_hash(kind, canonical)
    table = Suppression.__table__
    created = db.session.execute(
        backend()
        .insert(table)
        .values(value_hash=value_hash, kind=kind, reason=reason, note=note, created_by=actor, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["value_hash"])
        .returning(table.c.value_hash)
    ).scalar()
    row = db.session.get(Suppression, value_hash)
    assert row is not None
    if created is None:
        return row, False
    decisions.touch(hashes=[value_hash])
    audit.record(
        "suppression.added",
        actor=actor,
        target_type="suppression",
        target_id=value_hash.hex()[:16],
        details={"kind": kind, "reason": reason},
    )
    return row, True


def lift_by_own_grant(subject: Subject, channel_names: set[str]) -> None:
    """A grant the person made themselves, through a link mailed to them, is the
    one thing that lifts a suppression of the identifier on that channel."""
    for name in channel_names:
        kind = channels.CHANNELS[name].identifier_kind
        held = subject.identifier(kind) if kind else None
        suppression = db.session.get(Suppression, held.value_hash) if held else None
        if held is not None and suppression is not None:
            db.session.delete(suppression)
            audit.record(
                "suppression.lifted",
                actor=SELF,
                target_type="suppression",
                target_id=held.value_hash.hex()[:16],
                details={"kind": kind, "reason": suppression.reason, "subject": str(subject.id)},
            )
